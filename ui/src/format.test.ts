import { describe, expect, it } from "vitest";
import {
  addDays,
  dateInput,
  dayRange,
  daysInclusive,
  formatCompact,
  formatNumber,
  formatDuration,
  formatRelative,
  formatSeconds,
  formatTime,
  monthStartInput,
  parseLimit,
  parseSeconds,
} from "./format";

describe("format", () => {
  it("keeps the offset the API wrote and names the zone", () => {
    expect(formatTime("2026-11-30T00:00:00+01:00")).toBe("30 Nov 2026, 00:00 UTC+01:00");
    expect(formatTime("2026-07-01T08:05:09.123Z", { seconds: true })).toBe("1 Jul 2026, 08:05:09 UTC");
    expect(formatTime("2026-03-02T23:59:00-05:00", { year: false })).toBe("2 Mar, 23:59 UTC-05:00");
    expect(formatTime("not a time")).toBe("not a time");
  });

  it("formats large numbers", () => {
    expect(formatNumber(1234567)).toBe("1,234,567");
    expect(formatCompact(9999)).toBe("9,999");
    expect(formatCompact(80_000)).toBe("80K");
    expect(formatCompact(1_250_000)).toBe("1.3M");
  });

  it("says how far away a time is", () => {
    const now = Date.parse("2026-11-29T20:00:00+01:00");
    expect(formatRelative("2026-11-30T00:00:00+01:00", now)).toBe("in 4 h");
    expect(formatRelative("2026-11-29T19:57:00+01:00", now)).toBe("3 min ago");
    expect(formatRelative("2026-12-01T00:00:00+01:00", now)).toBe("in 1 day");
  });

  it("reads limits the way people type them", () => {
    expect(parseLimit("")).toBeNull();
    expect(parseLimit("1,000,000")).toBe(1_000_000);
    expect(parseLimit("1 000")).toBe(1000);
    expect(parseLimit("1.5M")).toBe(1_500_000);
    expect(parseLimit("250k")).toBe(250_000);
    expect(parseLimit("0")).toBe(0);
    expect(parseLimit("-1")).toBeUndefined();
    expect(parseLimit("1.5")).toBeUndefined();
    expect(parseLimit("lots")).toBeUndefined();
  });

  it("formats GPU seconds as numbers and as durations", () => {
    expect(formatSeconds(1234.56)).toBe("1,234.6");
    expect(formatSeconds(1234.567, 3)).toBe("1,234.567");
    expect(formatSeconds(1.5, 3)).toBe("1.5");
    expect(formatDuration(0)).toBe("0 s");
    expect(formatDuration(0.003)).toBe("0.003 s");
    expect(formatDuration(12.5)).toBe("12.5 s");
    expect(formatDuration(59.94)).toBe("59.9 s");
    expect(formatDuration(59.96)).toBe("1 m");
    expect(formatDuration(125)).toBe("2 m 5 s");
    expect(formatDuration(1800)).toBe("30 m");
    expect(formatDuration(3599.6)).toBe("1 h");
    expect(formatDuration(3723.456)).toBe("1 h 2 m");
    expect(formatDuration(360_000)).toBe("100 h");
    expect(formatDuration(3_600_000)).toBe("1,000 h");
  });

  it("reads GPU seconds the way people type them, to the millisecond", () => {
    expect(parseSeconds("")).toEqual({ value: null });
    expect(parseSeconds("  ")).toEqual({ value: null });
    expect(parseSeconds("1.5")).toEqual({ value: 1.5 });
    expect(parseSeconds("0.125")).toEqual({ value: 0.125 });
    expect(parseSeconds(".5")).toEqual({ value: 0.5 });
    expect(parseSeconds("1.5000")).toEqual({ value: 1.5 });
    expect(parseSeconds("1,800")).toEqual({ value: 1800 });
    expect(parseSeconds("1,234,567.891")).toEqual({ value: 1_234_567.891 });
    expect(parseSeconds("3 600")).toEqual({ value: 3600 });
    expect(parseSeconds("0")).toEqual({ value: 0 });
    expect(parseSeconds("-1")).toEqual({ problem: "negative" });
    expect(parseSeconds("-0.5")).toEqual({ problem: "negative" });
    expect(parseSeconds("1.2345")).toEqual({ problem: "decimals" });
    expect(parseSeconds("1,5")).toEqual({ problem: "not-a-number" });
    expect(parseSeconds("1.5k")).toEqual({ problem: "not-a-number" });
    expect(parseSeconds("1e3")).toEqual({ problem: "not-a-number" });
    expect(parseSeconds(".")).toEqual({ problem: "not-a-number" });
    expect(parseSeconds("-")).toEqual({ problem: "not-a-number" });
    expect(parseSeconds("lots")).toEqual({ problem: "not-a-number" });
    expect(parseSeconds("9".repeat(400))).toEqual({ problem: "too-large" });
  });

  it("works with days for the date inputs", () => {
    const at = new Date(2026, 10, 5, 23, 30); // 5 Nov 2026, the browser's zone
    expect(dateInput(at)).toBe("2026-11-05");
    expect(monthStartInput(at)).toBe("2026-11-01");
    expect(addDays("2026-11-30", 1)).toBe("2026-12-01");
    expect(addDays("2026-03-01", -1)).toBe("2026-02-28");
    expect(daysInclusive("2026-11-01", "2026-11-30")).toBe(30);
    expect(daysInclusive("2026-11-02", "2026-11-01")).toBe(0);
    expect(daysInclusive("2026-02-30", "2026-03-01")).toBeNull();
    expect(dayRange("2026-12-30", "2027-01-02")).toEqual(["2026-12-30", "2026-12-31", "2027-01-01", "2027-01-02"]);
    expect(dayRange("2026-11-02", "2026-11-01")).toEqual([]);
  });
});
