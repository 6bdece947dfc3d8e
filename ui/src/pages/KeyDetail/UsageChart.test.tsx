import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { DailyUsage } from "../../api/types";
import { NO_GPU_TIME } from "../../test/fixtures";
import { niceScale, UsageChart } from "./UsageChart";

function days(n: number): DailyUsage[] {
  return Array.from({ length: n }, (_, i) => {
    const date = new Date(Date.UTC(2026, 9, 31 + i)).toISOString().slice(0, 10);
    return { date, requests: i, prompt_tokens: i * 100, completion_tokens: i * 50, ...NO_GPU_TIME };
  });
}

describe("UsageChart", () => {
  it("draws prompt and completion tokens stacked and requests per day, with totals", () => {
    const { container } = render(<UsageChart days={days(30)} />);
    // Day 0 has no usage: no bars. 29 days × (prompt + completion) and 29 request bars.
    expect(container.querySelectorAll("rect.bar-prompt")).toHaveLength(29);
    expect(container.querySelectorAll("rect.bar-completion")).toHaveLength(29);
    expect(container.querySelectorAll("rect.bar-requests")).toHaveLength(29);
    expect(screen.getByText("435")).toBeInTheDocument(); // requests: 0+1+…+29
    expect(screen.getByText("43.5K")).toBeInTheDocument(); // prompt tokens
    expect(screen.getByText("21.8K")).toBeInTheDocument(); // completion tokens (21,750)
    expect(screen.getByRole("img", { name: /Tokens per day: 43,500 prompt, 21,750 completion/ })).toBeInTheDocument();
  });

  it("reads single days with the arrow keys (today first)", () => {
    const { container } = render(<UsageChart days={days(30)} />);
    const readout = container.querySelector(".chart-readout") as HTMLElement;
    expect(readout).toHaveTextContent("29 Nov");
    expect(readout).toHaveTextContent("29 requests");
    const chart = screen.getByRole("group", { name: /Usage chart, 30 days/ });
    fireEvent.keyDown(chart, { key: "ArrowLeft" });
    expect(readout).toHaveTextContent("28 Nov");
    expect(readout).toHaveTextContent("2,800 prompt");
    fireEvent.keyDown(chart, { key: "Home" });
    expect(readout).toHaveTextContent("31 Oct");
  });

  it("offers the same numbers as a table, newest first", () => {
    render(<UsageChart days={days(3)} />);
    const rows = screen.getAllByRole("row");
    expect(rows[1]).toHaveTextContent("2026-11-02");
    expect(rows[1]).toHaveTextContent("200");
  });

  it("has a sensible axis for an empty month", () => {
    const { container } = render(<UsageChart days={days(1)} />);
    expect(container.querySelectorAll("rect.bar-prompt")).toHaveLength(0);
    expect(niceScale(0)).toEqual({ top: 4, ticks: [0, 1, 2, 3, 4] });
  });

  it("rounds axis maxima to 1, 2, 2.5 or 5 × 10^k", () => {
    expect(niceScale(18_700).top).toBe(20_000);
    expect(niceScale(7).top).toBe(8);
    expect(niceScale(1234).top).toBe(2000);
  });
});
