import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { auditEntries, makeAuditEntry, makeKey, type Handler } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { KeyDetailPage, oldSecretUntil } from "./KeyDetailPage";

function renderKey(key = makeKey(), audit: Handler = () => ({ status: 200, body: [] })) {
  return renderWithApi(<KeyDetailPage id={key.id} />, {
    "GET /api/audit": audit,
    [`GET /api/api-keys/${key.id}`]: () => ({ status: 200, body: key }),
    [`GET /api/api-keys/${key.id}/usage`]: () => ({
      status: 200,
      body: [{ date: "2026-11-29", requests: 3, prompt_tokens: 40, completion_tokens: 23 }],
    }),
  });
}

describe("KeyDetailPage", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

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

  it("shows the GPU-time budget of the day and the month: left, used against the limit, or no limit", async () => {
    renderKey(
      makeKey({
        daily_gpu_seconds_limit: 3600,
        monthly_gpu_seconds_limit: null,
        usage: {
          day: { period: "2026-11-29", requests: 3, tokens: 63, gpu_seconds: 12.5, resets_at: "2026-11-30T00:00:00+01:00" },
          month: { period: "2026-11", requests: 120, tokens: 654_321, gpu_seconds: 3723.456, resets_at: "2026-12-01T00:00:00+01:00" },
        },
      }),
    );
    const today = await screen.findByRole("region", { name: "GPU time today" });
    expect(today).toHaveTextContent("59 m 48 s left");
    expect(today).toHaveTextContent("12.5 s / 1 h");
    expect(within(today).getByRole("meter", { name: "GPU seconds today" })).toHaveAttribute("aria-valuetext", "12.5 of 3,600");
    expect(today).toHaveTextContent("Resets");
    const month = screen.getByRole("region", { name: "GPU time this month" });
    expect(month).toHaveTextContent("1 h 2 m used · no limit");
    expect(within(month).queryByRole("meter")).toBeNull();
    // The token and request cards are still there, before the GPU ones.
    expect(screen.getAllByRole("region", { name: /today|this month/ }).map((r) => r.getAttribute("aria-label"))).toEqual([
      "Tokens today",
      "Tokens this month",
      "Requests today",
      "Requests this month",
      "GPU time today",
      "GPU time this month",
    ]);
  });

  it("shows a GPU-time limit that is used up as reached", async () => {
    renderKey(makeKey({ daily_gpu_seconds_limit: 10, usage: { ...makeKey().usage, day: { ...makeKey().usage.day, gpu_seconds: 10.25 } } }));
    const today = await screen.findByRole("region", { name: "GPU time today" });
    expect(today).toHaveClass("budget-full");
    expect(today).toHaveTextContent("0 s left");
    expect(today).toHaveTextContent("Limit reached");
  });

  it("names the key's team with a link to it, or says it has none", async () => {
    const { unmount } = renderKey(makeKey({ team: { id: 4, name: "research" } }));
    const team = await screen.findByTestId("key-team");
    expect(within(team).getByRole("link", { name: "research" })).toHaveAttribute("href", "/teams/4");
    unmount();
    renderKey(makeKey({ team: null }));
    expect(await screen.findByTestId("key-team")).toHaveTextContent("None");
  });

  it("says when the priority is the default", async () => {
    renderKey(makeKey({ requests_per_minute: null, max_parallel_requests: null, priority: 1 }));
    const priority = await screen.findByRole("region", { name: "Priority" });
    expect(priority).toHaveTextContent("1 of 10");
    expect(priority).toHaveTextContent("the default");
    expect(screen.getByRole("region", { name: "Requests per minute" })).toHaveTextContent("No limit");
    expect(screen.getByRole("region", { name: "Max parallel requests" })).toHaveTextContent("No limit");
  });

  it("says until when the old secret works, from the newest rotation in the key's history", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-12-01T17:00:00+01:00"));
    const rotation = (id: number, until: string | null) =>
      makeAuditEntry({ id, action: "key.rotated", before: { key_prefix: "sk-old" }, after: { key_prefix: "sk-AbCd1234", old_secret_valid_until: until } });
    const limits = makeAuditEntry({ id: 9 });
    const { unmount } = renderKey(makeKey(), () => ({ status: 200, body: [limits, rotation(8, "2026-12-02T16:20:00+01:00")] }));
    expect(await screen.findByTestId("old-secret")).toHaveTextContent("Old secret works until 2 Dec 2026, 16:20 UTC+01:00");
    unmount();
    // A later rotation at once ends the earlier one's grace period.
    renderKey(makeKey(), () => ({ status: 200, body: [rotation(9, null), rotation(8, "2026-12-02T16:20:00+01:00")] }));
    expect(await screen.findByRole("table", { name: /^History of/ })).toBeInTheDocument();
    expect(screen.queryByTestId("old-secret")).toBeNull();
  });

  it("lists the key's history (key_id=) without a key column, and pages it", async () => {
    const { server } = renderKey(makeKey({ id: 3 }), ({ path }) =>
      path.includes("before=")
        ? { status: 200, body: [makeAuditEntry({ id: 1, key_id: 3, action: "key.created", before: null, after: { name: "alice-laptop", daily_token_limit: 50_000 } })] }
        : { status: 200, body: auditEntries(21, 20, { key_id: 3 }) },
    );
    const history = await screen.findByRole("table", { name: "History of alice-laptop, newest first" });
    expect(screen.getByRole("heading", { name: "History", level: 2 })).toBeInTheDocument();
    expect(within(history).getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Time", "Client", "Action", "Changes"]);
    expect(within(history).getAllByRole("row")).toHaveLength(21);
    await userEvent.click(screen.getByRole("button", { name: "Load more" }));
    expect(await within(history).findByText("Key created")).toBeInTheDocument();
    expect(server.calls.filter((c) => c.path.startsWith("/api/audit")).map((c) => c.path)).toEqual([
      "/api/audit?limit=20&key_id=3",
      "/api/audit?limit=20&before=2&key_id=3",
    ]);
    expect(screen.getByText("All 21 entries shown.")).toBeInTheDocument();
  });

  it("says when nothing was recorded for the key", async () => {
    renderKey();
    expect(await screen.findByText("No change recorded for this key yet.")).toBeInTheDocument();
  });
});

describe("oldSecretUntil", () => {
  const now = Date.parse("2026-12-01T17:00:00+01:00");
  const rotated = (id: number, until: string | null) => makeAuditEntry({ id, action: "key.rotated", after: { key_prefix: "sk-x", old_secret_valid_until: until } });

  it("takes the newest rotation's grace period while it lasts", () => {
    expect(oldSecretUntil([makeAuditEntry({ id: 3 }), rotated(2, "2026-12-01T18:00:00+01:00")], now)).toBe("2026-12-01T18:00:00+01:00");
    expect(oldSecretUntil([rotated(2, "2026-12-01T16:59:00+01:00")], now)).toBeNull();
  });

  it("ignores an earlier rotation once a later one replaced it, and says nothing without any", () => {
    expect(oldSecretUntil([rotated(3, null), rotated(2, "2026-12-02T18:00:00+01:00")], now)).toBeNull();
    expect(oldSecretUntil([rotated(3, "2026-12-01T17:30:00+01:00"), rotated(2, "2026-12-02T18:00:00+01:00")], now)).toBe("2026-12-01T17:30:00+01:00");
    expect(oldSecretUntil([makeAuditEntry()], now)).toBeNull();
    expect(oldSecretUntil(undefined, now)).toBeNull();
  });
});
