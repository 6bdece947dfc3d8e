import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { AuditEntry, Key } from "../../api/types";
import { makeAuditEntry, makeKey, makeRotatedKey, type Handler } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { KeyDetailPage } from "./KeyDetailPage";

const NEW_SECRET = "sk-NeW5678abcdEFGH1234ijklMNOP5678qrstUVWX9012";

function renderKeyPage(rotate: Handler, key: Key = makeKey(), history: AuditEntry[] = []) {
  return renderWithApi(<KeyDetailPage id={key.id} />, {
    [`GET /api/api-keys/${key.id}`]: () => ({ status: 200, body: key }),
    [`GET /api/api-keys/${key.id}/usage`]: () => ({ status: 200, body: [] }),
    "GET /api/audit": () => ({ status: 200, body: history }),
    [`POST /api/api-keys/${key.id}/rotate`]: rotate,
  });
}

/** The 200 of a rotation: the key with its new prefix, the plaintext, and until when the old secret works. */
const rotated = (validUntil: string | null) => ({
  status: 200,
  body: makeRotatedKey({ key: NEW_SECRET, old_secret_valid_until: validUntil }),
});

describe("rotating a key's secret", () => {
  beforeEach(() => {
    // Only the clock: user-event's timers stay real.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2026-12-01T17:00:00+01:00"));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("offers the grace periods, sends the chosen one, and shows the new secret once", async () => {
    const user = userEvent.setup();
    const { server } = renderKeyPage(() => rotated("2026-12-02T16:20:00+01:00"));
    await user.click(await screen.findByRole("button", { name: "Rotate secret" }));
    const dialog = screen.getByRole("dialog", { name: "Rotate the secret of “alice-laptop”" });
    const grace = within(dialog).getByLabelText("Old secret stops working");
    expect(within(grace).getAllByRole("option").map((o) => [o.textContent, (o as HTMLOptionElement).value])).toEqual([
      ["Immediately", "0"],
      ["In 1 hour", "3600"],
      ["In 24 hours", "86400"],
      ["In 7 days", "604800"],
    ]);
    expect(grace).toHaveValue("0");
    expect(dialog).toHaveTextContent("refused (401) as soon as you rotate");
    await user.selectOptions(grace, "In 24 hours");
    expect(dialog).toHaveTextContent("Both secrets work until then (in 24 hours)");
    await user.click(within(dialog).getByRole("button", { name: "Rotate secret" }));

    expect(server.calls.find((c) => c.method === "POST")).toMatchObject({ path: "/api/api-keys/1/rotate", body: { grace_seconds: 86_400 } });
    const shown = await screen.findByRole("dialog", { name: "Secret rotated" });
    expect(shown).toHaveTextContent("Copy this key now. It will not be shown again.");
    expect(shown).toHaveTextContent("If it is lost, rotate the key again.");
    expect(within(shown).getByLabelText("The new API key")).toHaveValue(NEW_SECRET);
    expect(within(shown).getByTestId("rotated-old-secret")).toHaveTextContent("The old secret works until 2 Dec 2026, 16:20 UTC+01:00");
    await user.click(within(shown).getByRole("button", { name: "Copy key" }));
    expect(await navigator.clipboard.readText()).toBe(NEW_SECRET);

    // Behind the dialog the page already has the new prefix and the old secret's deadline.
    expect(screen.getByText("sk-NeW5678a…")).toBeInTheDocument();
    expect(screen.getByTestId("old-secret")).toHaveTextContent("Old secret works until 2 Dec 2026, 16:20 UTC+01:00");

    // Escape does not throw the only copy away; the button does, and the secret is gone.
    await user.keyboard("{Escape}");
    expect(screen.getByRole("dialog", { name: "Secret rotated" })).toBeInTheDocument();
    await user.click(within(shown).getByRole("button", { name: /I have stored the key/ }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(document.body.innerHTML).not.toContain(NEW_SECRET);
  });

  it("says when the old secret stopped at once, which ends an earlier rotation's grace period", async () => {
    const user = userEvent.setup();
    const earlier = makeAuditEntry({ action: "key.rotated", after: { key_prefix: "sk-AbCd1234", old_secret_valid_until: "2026-12-02T16:20:00+01:00" } });
    const { server } = renderKeyPage(() => rotated(null), makeKey(), [earlier]);
    expect(await screen.findByTestId("old-secret")).toHaveTextContent("Old secret works until 2 Dec 2026, 16:20 UTC+01:00");
    await user.click(screen.getByRole("button", { name: "Rotate secret" }));
    await user.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Rotate secret" }));
    expect(server.calls.find((c) => c.method === "POST")?.body).toEqual({ grace_seconds: 0 });
    const shown = await screen.findByRole("dialog", { name: "Secret rotated" });
    expect(within(shown).getByTestId("rotated-old-secret")).toHaveTextContent("The old secret no longer works.");
    expect(screen.queryByTestId("old-secret")).toBeNull();
  });

  it("keeps the dialog open with the API's message when it refuses", async () => {
    const user = userEvent.setup();
    renderKeyPage(() => ({ status: 422, body: { error: "grace_seconds: must be at most 2592000" } }));
    await user.click(await screen.findByRole("button", { name: "Rotate secret" }));
    const dialog = screen.getByRole("dialog", { name: /Rotate the secret/ });
    await user.click(within(dialog).getByRole("button", { name: "Rotate secret" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("grace_seconds: must be at most 2592000");
    expect(screen.queryByRole("dialog", { name: "Secret rotated" })).toBeNull();
  });

  it("reloads the key's history after a rotation", async () => {
    const user = userEvent.setup();
    let entries = [makeAuditEntry({ id: 1, action: "key.created", before: null, after: { name: "alice-laptop" } })];
    const key = makeKey();
    const { server } = renderWithApi(<KeyDetailPage id={1} />, {
      "GET /api/api-keys/1": () => ({ status: 200, body: key }),
      "GET /api/api-keys/1/usage": () => ({ status: 200, body: [] }),
      "GET /api/audit": () => ({ status: 200, body: entries }),
      "POST /api/api-keys/1/rotate": () => {
        entries = [makeAuditEntry({ id: 2, action: "key.rotated", before: { key_prefix: "sk-AbCd1234" }, after: { key_prefix: "sk-NeW5678a", old_secret_valid_until: null } }), ...entries];
        return rotated(null);
      },
    });
    const history = await screen.findByRole("table", { name: "History of alice-laptop, newest first" });
    expect(within(history).getAllByRole("row")).toHaveLength(2);
    await user.click(screen.getByRole("button", { name: "Rotate secret" }));
    await user.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Rotate secret" }));
    await user.click(await screen.findByRole("button", { name: /I have stored the key/ }));
    expect(await within(history).findByText("Secret rotated")).toBeInTheDocument();
    expect(server.calls.filter((c) => c.path.startsWith("/api/audit")).map((c) => c.path)).toEqual([
      "/api/audit?limit=20&key_id=1",
      "/api/audit?limit=20&key_id=1",
    ]);
  });
});
