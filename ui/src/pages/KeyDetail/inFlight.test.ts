import { describe, expect, it } from "vitest";

import { makeKey } from "../../test/fixtures";
import { inFlight } from "./KeyDetailPage";

describe("the key detail's in-flight line", () => {
  it("says None when nothing runs, else the requests and the tokens they hold reserved", () => {
    expect(inFlight(makeKey())).toBe("None");
    expect(inFlight(makeKey({ in_flight: { requests: 1, reserved_tokens: 266 } }))).toBe(
      "1 request · 266 tokens reserved",
    );
    expect(inFlight(makeKey({ in_flight: { requests: 3, reserved_tokens: 12_800 } }))).toMatch(
      /^3 requests · 12[,.\u202f\u00a0]?800 tokens reserved$/,
    );
  });
});
