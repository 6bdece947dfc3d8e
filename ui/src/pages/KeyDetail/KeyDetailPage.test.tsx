import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { makeKey } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { KeyDetailPage } from "./KeyDetailPage";

function renderKey(key = makeKey()) {
  return renderWithApi(<KeyDetailPage id={key.id} />, {
    [`GET /api/api-keys/${key.id}`]: () => ({ status: 200, body: key }),
    [`GET /api/api-keys/${key.id}/usage`]: () => ({
      status: 200,
      body: [{ date: "2026-11-29", requests: 3, prompt_tokens: 40, completion_tokens: 23 }],
    }),
  });
}

describe("KeyDetailPage", () => {
  it("shows the pacing: per-minute limits, the parallel cap (no limit when unset) and the priority", async () => {
    renderKey(makeKey({ requests_per_minute: 1_200, tokens_per_minute: null, max_parallel_requests: 4, priority: 7 }));
    expect(await screen.findByRole("heading", { name: /alice-laptop/, level: 1 })).toBeInTheDocument();
    expect(screen.getByRole("heading", { name: "Pacing", level: 2 })).toBeInTheDocument();
    expect(screen.getByRole("region", { name: "Requests per minute" })).toHaveTextContent("1,200 requests");
    expect(screen.getByRole("region", { name: "Tokens per minute" })).toHaveTextContent("No limit");
    expect(screen.getByRole("region", { name: "Max parallel requests" })).toHaveTextContent("4 requests");
    const priority = screen.getByRole("region", { name: "Priority" });
    expect(within(priority).getByText("7")).toBeInTheDocument();
    expect(priority).toHaveTextContent("of 10");
  });

  it("says when the priority is the default", async () => {
    renderKey(makeKey({ requests_per_minute: null, max_parallel_requests: null, priority: 1 }));
    const priority = await screen.findByRole("region", { name: "Priority" });
    expect(priority).toHaveTextContent("1 of 10");
    expect(priority).toHaveTextContent("the default");
    expect(screen.getByRole("region", { name: "Requests per minute" })).toHaveTextContent("No limit");
    expect(screen.getByRole("region", { name: "Max parallel requests" })).toHaveTextContent("No limit");
  });
});
