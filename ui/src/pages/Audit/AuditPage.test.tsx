import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { auditEntries, makeAuditEntry, type Handler } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { AuditPage } from "./AuditPage";

function renderAudit(route: Handler) {
  return renderWithApi(<AuditPage />, { "GET /api/audit": route });
}

const auditCalls = (server: { calls: { path: string }[] }) => server.calls.filter((c) => c.path.startsWith("/api/audit")).map((c) => c.path);

function bodyRows() {
  const table = screen.getByRole("table", { name: "Audit trail, newest first" });
  return within(within(table).getAllByRole("rowgroup")[1]).getAllByRole("row");
}

describe("AuditPage", () => {
  it("lists the entries newest first: time, client, action, a link to the key, and what changed", async () => {
    renderAudit(() => ({
      status: 200,
      body: [
        makeAuditEntry({
          id: 5,
          at: "2026-12-01T16:20:00+01:00",
          action: "key.rotated",
          before: { key_prefix: "sk-old1234" },
          after: { key_prefix: "sk-new5678", old_secret_valid_until: "2026-12-01T17:20:00+01:00" },
        }),
        makeAuditEntry({ id: 4, at: "2026-12-01T16:00:00+01:00", client: "cli" }),
        makeAuditEntry({
          id: 3,
          action: "settings.changed",
          key_id: null,
          key_name: null,
          before: { default_model: null },
          after: { default_model: "qwen3:8b" },
        }),
        makeAuditEntry({
          id: 2,
          client: "gateway",
          action: "alert.sent",
          before: null,
          after: { limit: "daily_tokens", threshold: 0.8, used: 800, limit_value: 1000, period: "2026-12-01" },
        }),
        makeAuditEntry({ id: 1, action: "key.deleted", key_id: 7, key_name: "old-demo", before: { name: "old-demo", daily_token_limit: 100 }, after: null }),
      ],
    }));
    await screen.findByRole("table", { name: "Audit trail, newest first" });
    const table = screen.getByRole("table", { name: "Audit trail, newest first" });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Time", "Client", "Action", "Key", "Changes"]);
    const [rotated, limits, settings, alert, deleted] = bodyRows();

    expect(rotated).toHaveTextContent("1 Dec 2026, 16:20:00 UTC+01:00");
    expect(rotated).toHaveTextContent("127.0.0.1");
    expect(within(rotated).getByText("Secret rotated")).toHaveAttribute("title", "key.rotated");
    expect(within(rotated).getByRole("link", { name: "alice-laptop" })).toHaveAttribute("href", "/keys/1");
    expect(rotated).toHaveTextContent("Prefix sk-old1234… → sk-new5678…");
    expect(rotated).toHaveTextContent("Old secret works until 1 Dec 2026, 17:20 UTC+01:00");

    expect(limits).toHaveTextContent("cli");
    expect(limits).toHaveTextContent("Limits changed");
    expect(within(limits).getByText("50,000").tagName).toBe("DEL");
    expect(within(limits).getByText("80,000").tagName).toBe("INS");
    expect(limits).toHaveTextContent("Tokens per day 50,000 → 80,000");

    expect(settings).toHaveTextContent("Settings changed");
    expect(settings).toHaveTextContent("Default model from configuration → qwen3:8b");
    expect(within(settings).queryByRole("link")).toBeNull();

    expect(alert).toHaveTextContent("gateway");
    expect(alert).toHaveTextContent("Alert sent");
    expect(alert).toHaveTextContent("Limit Tokens per day");
    expect(alert).toHaveTextContent("Threshold 80%");
    expect(alert).toHaveTextContent("Used 800");
    expect(alert).toHaveTextContent("Limit value 1,000");

    expect(deleted).toHaveTextContent("Key deleted");
    expect(deleted).toHaveTextContent("old-demo (deleted)");
    expect(within(deleted).queryByRole("link")).toBeNull();
    expect(within(deleted).getByText("100").tagName).toBe("DEL");

    // A page shorter than 50: nothing older.
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();
    expect(screen.getByText("All 5 entries shown.")).toBeInTheDocument();
  });

  it("pages with before=<last id> and appends the older entries", async () => {
    const user = userEvent.setup();
    const { server } = renderAudit(({ path }) => {
      const before = new URL(path, "http://x").searchParams.get("before");
      if (before === null) return { status: 200, body: auditEntries(120, 50) };
      if (before === "71") return { status: 200, body: auditEntries(70, 50) };
      if (before === "21") return { status: 200, body: auditEntries(20, 20) };
      return { status: 500, body: { error: `unexpected before=${before}` } };
    });
    await screen.findByRole("table", { name: "Audit trail, newest first" });
    expect(auditCalls(server)).toEqual(["/api/audit?limit=50"]);
    expect(bodyRows()).toHaveLength(50);
    expect(bodyRows()[0]).toHaveTextContent("120,000 → 120,500");

    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect(await screen.findByText("70,000")).toBeInTheDocument();
    expect(auditCalls(server)[1]).toBe("/api/audit?limit=50&before=71");
    expect(bodyRows()).toHaveLength(100);
    // Still newest first, the first page kept.
    expect(bodyRows()[0]).toHaveTextContent("120,000");
    expect(bodyRows()[50]).toHaveTextContent("70,000");

    await user.click(screen.getByRole("button", { name: "Load more" }));
    expect(await screen.findByText("All 120 entries shown.")).toBeInTheDocument();
    expect(auditCalls(server)[2]).toBe("/api/audit?limit=50&before=21");
    expect(bodyRows()).toHaveLength(120);
    expect(bodyRows()[119]).toHaveTextContent("1,000 → 1,500");
    expect(screen.queryByRole("button", { name: "Load more" })).toBeNull();

    // Refresh starts again from the newest page.
    await user.click(screen.getByRole("button", { name: "Refresh" }));
    expect(auditCalls(server)[3]).toBe("/api/audit?limit=50");
    expect(await screen.findByRole("button", { name: "Load more" })).toBeInTheDocument();
    expect(bodyRows()).toHaveLength(50);
  });

  it("keeps what is shown when an older page fails, and says so", async () => {
    const user = userEvent.setup();
    renderAudit(({ path }) => (path.includes("before=") ? "network-error" : { status: 200, body: auditEntries(60, 50) }));
    await user.click(await screen.findByRole("button", { name: "Load more" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Could not load older entries: Cannot reach the admin API");
    expect(bodyRows()).toHaveLength(50);
    expect(screen.getByRole("button", { name: "Load more" })).toBeEnabled();
  });

  it("has an empty state and an error state", async () => {
    const { unmount } = renderAudit(() => ({ status: 200, body: [] }));
    expect(await screen.findByText("Nothing recorded yet")).toBeInTheDocument();
    expect(screen.queryByRole("table")).toBeNull();
    unmount();

    renderAudit(() => "network-error");
    expect(await screen.findByRole("alert")).toHaveTextContent("The admin API is unreachable");
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("names the team of a team entry in the key column, with a link while it exists", async () => {
    renderAudit(() => ({
      status: 200,
      body: [
        makeAuditEntry({
          id: 3,
          action: "team.deleted",
          key_id: null,
          key_name: null,
          before: { team_id: 2, name: "old-team", daily_request_limit: 10 },
          after: null,
        }),
        makeAuditEntry({
          id: 2,
          action: "team.edited",
          key_id: null,
          key_name: null,
          before: { team_id: 1, name: "data", daily_request_limit: 1_000 },
          after: { team_id: 1, name: "data", daily_request_limit: 2_000 },
        }),
        makeAuditEntry({ id: 1, action: "key.edited", before: { team: null }, after: { team: "data" } }),
      ],
    }));
    await screen.findByText("Team edited");
    const [deleted, edited, moved] = bodyRows();
    expect(deleted).toHaveTextContent("Team deleted");
    expect(deleted.querySelector('[data-label="Key"]')).toHaveTextContent("Team old-team (deleted)");
    expect(within(edited).getByRole("link", { name: "data" })).toHaveAttribute("href", "/teams/1");
    expect(edited.querySelector('[data-label="Changes"]')).toHaveTextContent("Requests per day 1,000 → 2,000");
    expect(edited.querySelector('[data-label="Changes"]')).not.toHaveTextContent("Name");
    expect(moved.querySelector('[data-label="Changes"]')).toHaveTextContent("Team no team → data");
    expect(within(moved).getByRole("link", { name: "alice-laptop" })).toHaveAttribute("href", "/keys/1");
  });
});
