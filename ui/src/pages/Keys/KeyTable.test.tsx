import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { makeKey, makeTeam } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { KeyTable } from "./KeyTable";

const keys = [
  makeKey(),
  makeKey({
    id: 2,
    name: "ci-pipeline",
    key_prefix: "sk-Zz99Yy88",
    expires_at: "2027-01-13T19:45:00+01:00",
    daily_token_limit: null,
    monthly_token_limit: null,
    daily_request_limit: 5,
    monthly_request_limit: 100,
    daily_gpu_seconds_limit: 60,
    monthly_gpu_seconds_limit: 7200,
    allowed_models: ["llama3", "qwen3:8b", "mistral:7b"],
    usage: {
      day: { period: "2026-11-29", requests: 5, tokens: 64, gpu_seconds: 45.25, resets_at: "2026-11-30T00:00:00+01:00" },
      month: { period: "2026-11", requests: 40, tokens: 64, gpu_seconds: 1234.567, resets_at: "2026-12-01T00:00:00+01:00" },
    },
  }),
  makeKey({ id: 3, name: "bob-notebook", key_prefix: "sk-Bb00Bb00", is_active: false }),
  makeKey({ id: 4, name: "old-demo", key_prefix: "sk-Old00000", expires_at: "2020-01-01T00:00:00Z" }),
];

function rowOf(name: string) {
  return screen.getByRole("row", { name: new RegExp(name) });
}

describe("KeyTable", () => {
  it("shows name, prefix, status, the four limits with usage, models and expiry with its zone", () => {
    renderWithApi(<KeyTable keys={keys} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />);
    const alice = rowOf("alice-laptop");
    expect(within(alice).getByRole("link", { name: "alice-laptop" })).toHaveAttribute("href", "/keys/1");
    expect(alice).toHaveTextContent("sk-AbCd1234…");
    expect(alice).toHaveTextContent("Active");
    expect(alice).toHaveTextContent("63 / 80K");
    expect(alice).toHaveTextContent("654.3K / 1M");
    expect(alice).toHaveTextContent("3 / 500");
    expect(alice).toHaveTextContent("120 · no limit");
    expect(alice).toHaveTextContent("All local");
    expect(alice).toHaveTextContent("Never");
    expect(within(alice).getByRole("meter", { name: "tokens today" })).toHaveAttribute("aria-valuenow", "63");

    const ci = rowOf("ci-pipeline");
    expect(ci).toHaveTextContent("13 Jan 2027");
    expect(ci).toHaveTextContent("19:45 UTC+01:00");
    expect(ci).toHaveTextContent("5 / 5");
    expect(ci).toHaveTextContent("llama3");
    expect(ci).toHaveTextContent("+1");
    expect(ci.querySelector(".usage-full")).not.toBeNull();

    expect(rowOf("bob-notebook")).toHaveTextContent("Inactive");
    expect(rowOf("old-demo")).toHaveTextContent("Expired");
  });

  it("shows GPU time against its limit, in a column only when some key has a GPU-time limit", () => {
    renderWithApi(<KeyTable keys={keys} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />);
    expect(screen.getByRole("columnheader", { name: /GPU time/ })).toBeInTheDocument();
    const ci = rowOf("ci-pipeline");
    expect(ci).toHaveTextContent("45.3 s / 1 m");
    expect(ci).toHaveTextContent("20 m 35 s / 2 h");
    const today = within(ci).getByRole("meter", { name: "GPU seconds today" });
    expect(today).toHaveAttribute("aria-valuenow", "45.25");
    expect(today).toHaveAttribute("aria-valuemax", "60");
    expect(today).toHaveAttribute("aria-valuetext", "45.25 of 60");
    expect(within(ci).getByRole("meter", { name: "GPU seconds this month" })).toHaveAttribute("aria-valuetext", "1,234.567 of 7,200");
    // A key without a GPU-time limit says so instead of two bars.
    const alice = rowOf("alice-laptop");
    expect(within(alice).queryByRole("meter", { name: /GPU seconds/ })).toBeNull();
    expect(alice.querySelector('[data-label="GPU time day / month"]')).toHaveTextContent("No limit");
  });

  it("has no GPU-time column when no key has a GPU-time limit", () => {
    renderWithApi(<KeyTable keys={[keys[0], keys[2]]} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />);
    expect(screen.getAllByRole("columnheader")).toHaveLength(7);
    expect(screen.queryByRole("columnheader", { name: /GPU time/ })).toBeNull();
    expect(rowOf("alice-laptop").querySelector('[data-label="GPU time day / month"]')).toBeNull();
  });

  it("offers edit, deactivate or activate, and delete for each key, by name", () => {
    renderWithApi(<KeyTable keys={keys} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />);
    expect(screen.getByRole("button", { name: "Edit alice-laptop" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Deactivate alice-laptop" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Activate bob-notebook" })).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Delete bob-notebook" })).toBeInTheDocument();
  });

  it("deletes only after a confirmation", async () => {
    const onDeleted = vi.fn();
    const { server } = renderWithApi(<KeyTable keys={keys} loading={false} onChanged={vi.fn()} onDeleted={onDeleted} />, {
      "DELETE /api/api-keys/3": () => ({ status: 204 }),
    });
    await userEvent.click(screen.getByRole("button", { name: "Delete bob-notebook" }));
    const dialog = screen.getByRole("alertdialog", { name: "Delete “bob-notebook”?" });
    expect(dialog).toHaveTextContent("cannot be undone");
    expect(server.calls.filter((c) => c.method === "DELETE")).toHaveLength(0);
    await userEvent.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("alertdialog")).toBeNull();
    await userEvent.click(screen.getByRole("button", { name: "Delete bob-notebook" }));
    await userEvent.click(screen.getByRole("button", { name: "Delete key" }));
    expect(onDeleted).toHaveBeenCalledWith(3);
    expect(server.calls.find((c) => c.method === "DELETE")?.path).toBe("/api/api-keys/3");
  });

  it("deactivates after a confirmation and hands back the updated key", async () => {
    const onChanged = vi.fn();
    renderWithApi(<KeyTable keys={keys} loading={false} onChanged={onChanged} onDeleted={vi.fn()} />, {
      "PUT /api/api-keys/1/deactivate": () => ({ status: 200, body: { ...keys[0], is_active: false } }),
    });
    await userEvent.click(screen.getByRole("button", { name: "Deactivate alice-laptop" }));
    await userEvent.click(within(screen.getByRole("alertdialog")).getByRole("button", { name: "Deactivate" }));
    expect(onChanged).toHaveBeenCalledWith(expect.objectContaining({ id: 1, is_active: false }));
  });

  it("edits a quota: only the changed limit goes to PATCH …/quota", async () => {
    const onChanged = vi.fn();
    const { server } = renderWithApi(<KeyTable keys={keys} loading={false} onChanged={onChanged} onDeleted={vi.fn()} />, {
      "PATCH /api/api-keys/1/quota": ({ body }) => ({ status: 200, body: { ...keys[0], ...(body as object) } }),
    });
    await userEvent.click(screen.getByRole("button", { name: "Edit alice-laptop" }));
    const dialog = screen.getByRole("dialog", { name: "Edit “alice-laptop”" });
    const field = within(dialog).getByLabelText("Tokens per day");
    expect(field).toHaveValue("80,000");
    await userEvent.clear(field);
    await userEvent.type(field, "1.5M");
    expect(dialog).toHaveTextContent("1,500,000 tokens");
    await userEvent.click(within(dialog).getByRole("button", { name: "Save changes" }));
    const patch = server.calls.find((c) => c.method === "PATCH");
    expect(patch).toMatchObject({ path: "/api/api-keys/1/quota", body: { daily_token_limit: 1_500_000 } });
    expect(server.calls.filter((c) => c.method === "PATCH")).toHaveLength(1);
    expect(onChanged).toHaveBeenCalledWith(expect.objectContaining({ daily_token_limit: 1_500_000 }));
  });

  it("edits a GPU-time limit: shown exactly, sent as a number of seconds", async () => {
    const { server } = renderWithApi(<KeyTable keys={keys} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />, {
      "PATCH /api/api-keys/2/quota": ({ body }) => ({ status: 200, body: { ...keys[1], ...(body as object) } }),
    });
    await userEvent.click(screen.getByRole("button", { name: "Edit ci-pipeline" }));
    const dialog = screen.getByRole("dialog", { name: "Edit “ci-pipeline”" });
    expect(within(dialog).getByLabelText("GPU seconds per day")).toHaveValue("60");
    const month = within(dialog).getByLabelText("GPU seconds per month");
    expect(month).toHaveValue("7,200");
    expect(dialog).toHaveTextContent("7,200 GPU seconds (2 h)");
    await userEvent.clear(month);
    await userEvent.type(month, "1,800.25");
    expect(dialog).toHaveTextContent("1,800.25 GPU seconds (30 m)");
    await userEvent.click(within(dialog).getByRole("button", { name: "Save changes" }));
    const patches = server.calls.filter((c) => c.method === "PATCH");
    expect(patches).toHaveLength(1);
    expect(patches[0]).toMatchObject({ path: "/api/api-keys/2/quota" });
    expect(patches[0].body).toEqual({ monthly_gpu_seconds_limit: 1800.25 });
  });

  it("edits pacing: only the changed pacing fields and priority go to PATCH …/quota", async () => {
    const { server } = renderWithApi(<KeyTable keys={keys} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />, {
      "PATCH /api/api-keys/1/quota": ({ body }) => ({ status: 200, body: { ...keys[0], ...(body as object) } }),
    });
    await userEvent.click(screen.getByRole("button", { name: "Edit alice-laptop" }));
    const dialog = screen.getByRole("dialog", { name: "Edit “alice-laptop”" });
    expect(within(dialog).getByLabelText("Requests per minute")).toHaveValue("60");
    expect(within(dialog).getByLabelText("Tokens per minute")).toHaveValue("");
    expect(within(dialog).getByLabelText("Max parallel requests")).toHaveValue("2");
    expect(within(dialog).getByLabelText("Priority")).toHaveValue(1);
    await userEvent.clear(within(dialog).getByLabelText("Requests per minute"));
    await userEvent.type(within(dialog).getByLabelText("Tokens per minute"), "20k");
    await userEvent.clear(within(dialog).getByLabelText("Priority"));
    await userEvent.type(within(dialog).getByLabelText("Priority"), "7");
    await userEvent.click(within(dialog).getByRole("button", { name: "Save changes" }));
    const patches = server.calls.filter((c) => c.method === "PATCH");
    expect(patches).toHaveLength(1);
    expect(patches[0]).toMatchObject({ path: "/api/api-keys/1/quota" });
    expect(patches[0].body).toEqual({ requests_per_minute: null, tokens_per_minute: 20_000, priority: 7 });
  });

  it("shows the API's message when it refuses the priority", async () => {
    renderWithApi(<KeyTable keys={keys} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />, {
      "PATCH /api/api-keys/1/quota": () => ({ status: 422, body: { error: "priority: expected an integer from 1 to 10" } }),
    });
    await userEvent.click(screen.getByRole("button", { name: "Edit alice-laptop" }));
    const dialog = screen.getByRole("dialog", { name: "Edit “alice-laptop”" });
    await userEvent.clear(within(dialog).getByLabelText("Priority"));
    await userEvent.type(within(dialog).getByLabelText("Priority"), "4");
    await userEvent.click(within(dialog).getByRole("button", { name: "Save changes" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent("priority: expected an integer from 1 to 10");
  });

  it("shows placeholder rows while the first load runs", () => {
    const { container } = renderWithApi(<KeyTable keys={undefined} loading onChanged={vi.fn()} onDeleted={vi.fn()} />);
    expect(container.querySelectorAll(".skeleton-row")).toHaveLength(3);
  });

  it("shows each key's team with a link, in a column only when asked for", () => {
    const teamed = [makeKey({ team: { id: 5, name: "research" } }), makeKey({ id: 3, name: "bob-notebook", key_prefix: "sk-Bb00Bb00" })];
    const { unmount } = renderWithApi(<KeyTable keys={teamed} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} showTeam />);
    expect(screen.getByRole("columnheader", { name: "Team" })).toBeInTheDocument();
    expect(within(rowOf("alice-laptop")).getByRole("link", { name: "research" })).toHaveAttribute("href", "/teams/5");
    expect(rowOf("bob-notebook").querySelector('[data-label="Team"]')).toHaveTextContent("—");
    unmount();
    renderWithApi(<KeyTable keys={teamed} loading={false} onChanged={vi.fn()} onDeleted={vi.fn()} />);
    expect(screen.queryByRole("columnheader", { name: "Team" })).toBeNull();
  });

  it("moves a key to another team, or out of its team, with PATCH /api/api-keys/{id}", async () => {
    const alice = makeKey({ team: { id: 1, name: "research" } });
    const onChanged = vi.fn();
    const { server } = renderWithApi(<KeyTable keys={[alice]} loading={false} onChanged={onChanged} onDeleted={vi.fn()} showTeam />, {
      "GET /api/teams": () => ({ status: 200, body: [makeTeam(), makeTeam({ id: 2, name: "support" })] }),
      "PATCH /api/api-keys/1": ({ body }) => {
        const id = (body as { team_id: number | null }).team_id;
        return { status: 200, body: { ...alice, team: id === null ? null : { id, name: id === 2 ? "support" : "research" } } };
      },
    });
    await userEvent.click(screen.getByRole("button", { name: "Edit alice-laptop" }));
    let dialog = screen.getByRole("dialog", { name: "Edit “alice-laptop”" });
    let team = within(dialog).getByLabelText("Team");
    expect(team).toHaveValue("1");
    await waitFor(() => expect(team).toBeEnabled());
    await userEvent.selectOptions(team, "support");
    await userEvent.click(within(dialog).getByRole("button", { name: "Save changes" }));
    expect(server.calls.filter((c) => c.method === "PATCH").map((c) => [c.path, c.body])).toEqual([["/api/api-keys/1", { team_id: 2 }]]);
    expect(onChanged).toHaveBeenLastCalledWith(expect.objectContaining({ team: { id: 2, name: "support" } }));

    await userEvent.click(screen.getByRole("button", { name: "Edit alice-laptop" }));
    dialog = screen.getByRole("dialog", { name: "Edit “alice-laptop”" });
    team = within(dialog).getByLabelText("Team");
    await waitFor(() => expect(team).toBeEnabled());
    await userEvent.selectOptions(team, "— none —");
    await userEvent.click(within(dialog).getByRole("button", { name: "Save changes" }));
    expect(server.calls.filter((c) => c.method === "PATCH").map((c) => c.body)).toEqual([{ team_id: 2 }, { team_id: null }]);
  });
});
