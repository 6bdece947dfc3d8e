import { describe, expect, it } from "vitest";
import type { UsageRow } from "../../api/types";
import { groupUsage, NO_GPU_TIME, USAGE_ROWS } from "../../test/fixtures";
import { MAX_SERIES, rangeProblem, stackRows, totalsOf } from "./usage";

describe("the usage report's helpers", () => {
  it("checks the range as the API would", () => {
    expect(rangeProblem("2026-11-01", "2026-11-30")).toBeNull();
    expect(rangeProblem("2026-11-01", "2026-11-01")).toBeNull();
    expect(rangeProblem("", "2026-11-30")).toBe("Pick a first and a last day.");
    expect(rangeProblem("2026-11-02", "2026-11-01")).toBe("The last day is before the first day.");
    expect(rangeProblem("2025-01-01", "2026-01-01")).toBeNull(); // 366 days
    expect(rangeProblem("2025-01-01", "2026-01-02")).toBe("At most 366 days at a time (this range has 367).");
  });

  it("sums the rows", () => {
    expect(totalsOf(USAGE_ROWS)).toEqual({ requests: 17, prompt_tokens: 1900, completion_tokens: 825, gpu_seconds: expect.closeTo(1.7, 9) });
    expect(totalsOf([])).toEqual({ requests: 0, prompt_tokens: 0, completion_tokens: 0, gpu_seconds: 0 });
  });

  it("stacks each day by key, the largest key first, with a zero for days without requests", () => {
    const rows = groupUsage(USAGE_ROWS, ["key", "day"]);
    const { series, days } = stackRows(rows, ["2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"], "key", "requests");
    expect(series.map((s) => [s.label, s.total, s.colour, s.keyId])).toEqual([
      ["alice-laptop", 11, 0, 1],
      ["ci-pipeline", 6, 1, 2],
    ]);
    expect(days.map((d) => [d.date, d.values, d.total])).toEqual([
      ["2026-11-02", [0, 0], 0],
      ["2026-11-03", [5, 2], 7],
      ["2026-11-04", [6, 0], 6],
      ["2026-11-05", [0, 4], 4],
    ]);
  });

  it("puts the smallest of many models together as others, in the last colour", () => {
    const rows: UsageRow[] = Array.from({ length: 10 }, (_, i) => ({
      key_id: null,
      key_name: null,
      model: `model-${i}`,
      date: "2026-11-03",
      requests: 1,
      prompt_tokens: (10 - i) * 100,
      completion_tokens: 0,
      ...NO_GPU_TIME,
    }));
    const { series, days } = stackRows(rows, ["2026-11-03"], "model", "tokens");
    expect(series).toHaveLength(MAX_SERIES);
    expect(series[0]).toMatchObject({ label: "model-0", total: 1000, colour: 0 });
    expect(series[MAX_SERIES - 1]).toMatchObject({ id: "others", label: "3 others", total: 300 + 200 + 100, colour: MAX_SERIES - 1 });
    expect(days[0].total).toBe(5500);
    expect(days[0].values[MAX_SERIES - 1]).toBe(600);
  });
});
