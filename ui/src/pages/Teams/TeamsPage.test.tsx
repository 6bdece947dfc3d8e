import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import type { Team } from "../../api/types";
import { makeTeam, type Handler } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { TeamsPage } from "./TeamsPage";

const teams = [
  makeTeam(),
  makeTeam({
    id: 2,
    name: "support-bots",
    description: null,
    key_count: 0,
    daily_token_limit: null,
    monthly_token_limit: null,
    daily_request_limit: 100,
    monthly_request_limit: 1_000,
    daily_gpu_seconds_limit: 60,
    monthly_gpu_seconds_limit: null,
    usage: {
      day: { period: "2026-11-29", requests: 100, tokens: 900, gpu_seconds: 12.5, resets_at: "2026-11-30T00:00:00+01:00" },
      month: { period: "2026-11", requests: 400, tokens: 9_000, gpu_seconds: 300, resets_at: "2026-12-01T00:00:00+01:00" },
    },
  }),
];

function renderTeams(routes: Record<string, Handler> = {}, list: Team[] = teams) {
  return renderWithApi(<TeamsPage />, { "GET /api/teams": () => ({ status: 200, body: list }), ...routes });
}

function rowOf(name: string) {
  return screen.getByRole("row", { name: new RegExp(name) });
}

describe("TeamsPage", () => {
  it("lists each team: name, description, key count, the shared limits with the usage of its keys", async () => {
    renderTeams();
    expect(screen.getByRole("heading", { name: "Teams", level: 1 })).toBeInTheDocument();
    const research = await screen.findByRole("row", { name: /research/ });
    expect(within(research).getByRole("link", { name: "research" })).toHaveAttribute("href", "/teams/1");
    expect(research).toHaveTextContent("The research group's notebooks and batch jobs");
    expect(research.querySelector('[data-label="Keys"]')).toHaveTextContent("2");
    expect(research).toHaveTextContent("12.3K / 500K");
    expect(research).toHaveTextContent("2.3M / 10M");
    expect(research).toHaveTextContent("42 / 2,000");
    expect(research).toHaveTextContent("1,234 · no limit");
    expect(within(research).getByRole("meter", { name: "tokens today" })).toHaveAttribute("aria-valuenow", "12345");

    const bots = rowOf("support-bots");
    expect(bots.querySelector('[data-label="Description"]')).toHaveTextContent("—");
    expect(bots.querySelector('[data-label="Keys"]')).toHaveTextContent("0");
    expect(bots).toHaveTextContent("100 / 100");
    expect(bots.querySelector(".usage-full")).not.toBeNull();
    // GPU time has a column because one team has a GPU-time limit; the other says it has none.
    expect(screen.getByRole("columnheader", { name: /GPU time/ })).toBeInTheDocument();
    expect(bots).toHaveTextContent("12.5 s / 1 m");
    expect(research.querySelector('[data-label="GPU time day / month"]')).toHaveTextContent("No limit");
  });

  it("has no GPU-time column when no team has a GPU-time limit", async () => {
    renderTeams({}, [teams[0]]);
    await screen.findByRole("row", { name: /research/ });
    expect(screen.getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Name",
      "Description",
      "Keys",
      "Tokens today · this month",
      "Requests today · this month",
      "Actions",
    ]);
  });

  it("says when there is no team yet, with a way to create the first", async () => {
    renderTeams({}, []);
    expect(await screen.findByText("No teams yet")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Create the first team" }));
    expect(screen.getByRole("dialog", { name: "New team" })).toBeInTheDocument();
  });

  it("creates a team from the typed name, description and limits, and lists it", async () => {
    const user = userEvent.setup();
    const { server } = renderTeams({
      "POST /api/teams": ({ body }) => ({ status: 201, body: makeTeam({ id: 3, key_count: 0, ...(body as Partial<Team>) }) }),
    });
    await screen.findByRole("row", { name: /research/ });
    await user.click(screen.getByRole("button", { name: "New team" }));
    const dialog = screen.getByRole("dialog", { name: "New team" });
    expect(within(dialog).getByLabelText("Name")).toHaveFocus();
    await user.type(within(dialog).getByLabelText("Name"), "  data-science ");
    await user.type(within(dialog).getByLabelText(/Description/), "Notebooks of the data team");
    await user.type(within(dialog).getByLabelText("Tokens per month"), "2.5M");
    await user.type(within(dialog).getByLabelText("Requests per day"), "1,500");
    expect(dialog).toHaveTextContent("1,500 requests");
    await user.type(within(dialog).getByLabelText("GPU seconds per day"), "1,800.5");
    expect(dialog).toHaveTextContent("1,800.5 GPU seconds (30 m 1 s)");
    await user.type(within(dialog).getByLabelText("Max parallel requests"), "4");
    await user.clear(within(dialog).getByLabelText("Priority"));
    await user.type(within(dialog).getByLabelText("Priority"), "3");
    await user.click(within(dialog).getByRole("radio", { name: "Only these" }));
    await user.click(await within(dialog).findByRole("checkbox", { name: "llama3:latest" }));
    await user.click(within(dialog).getByRole("button", { name: "Create team" }));

    expect(server.calls.find((c) => c.method === "POST")?.body).toEqual({
      name: "data-science",
      description: "Notebooks of the data team",
      daily_token_limit: null,
      monthly_token_limit: 2_500_000,
      daily_request_limit: 1_500,
      monthly_request_limit: null,
      daily_gpu_seconds_limit: 1800.5,
      monthly_gpu_seconds_limit: null,
      requests_per_minute: null,
      tokens_per_minute: null,
      max_parallel_requests: 4,
      priority: 3,
      allowed_models: ["llama3:latest"],
    });
    expect(await screen.findByRole("link", { name: "data-science" })).toHaveAttribute("href", "/teams/3");
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(await screen.findByText("Created “data-science”.")).toBeInTheDocument();
  });

  it("points at invalid fields before calling the API, naming the GPU-time field", async () => {
    const user = userEvent.setup();
    const { server } = renderTeams();
    await user.click(screen.getByRole("button", { name: "New team" }));
    const dialog = screen.getByRole("dialog", { name: "New team" });
    await user.type(within(dialog).getByLabelText("Requests per day"), "12.5x");
    await user.type(within(dialog).getByLabelText("GPU seconds per month"), "0.0001");
    await user.click(within(dialog).getByRole("button", { name: "Create team" }));
    expect(within(dialog).getByLabelText("Name")).toHaveAttribute("aria-invalid", "true");
    expect(dialog).toHaveTextContent("Give the team a name");
    expect(within(dialog).getByLabelText("Requests per day")).toHaveAttribute("aria-invalid", "true");
    expect(within(dialog).getByLabelText("GPU seconds per month")).toHaveAccessibleDescription(
      "GPU seconds per month: at most 3 decimals (milliseconds).",
    );
    expect(server.calls.filter((c) => c.method === "POST")).toHaveLength(0);
  });

  it("shows the API's refusal of a name in use inside the dialog", async () => {
    const user = userEvent.setup();
    renderTeams({ "POST /api/teams": () => ({ status: 409, body: { error: 'a team named "research" exists already' } }) });
    await user.click(screen.getByRole("button", { name: "New team" }));
    const dialog = screen.getByRole("dialog", { name: "New team" });
    await user.type(within(dialog).getByLabelText("Name"), "research");
    await user.click(within(dialog).getByRole("button", { name: "Create team" }));
    expect(await within(dialog).findByRole("alert")).toHaveTextContent('a team named "research" exists already');
    expect(within(dialog).getByRole("button", { name: "Create team" })).toBeEnabled();
  });

  it("edits a team: the form starts from its values, and only what changed is sent", async () => {
    const user = userEvent.setup();
    const { server } = renderTeams({
      "PATCH /api/teams/1": ({ body }) => ({ status: 200, body: { ...teams[0], ...(body as Partial<Team>) } }),
    });
    await screen.findByRole("row", { name: /research/ });
    await user.click(screen.getByRole("button", { name: "Edit research" }));
    const dialog = screen.getByRole("dialog", { name: "Edit “research”" });
    expect(within(dialog).getByLabelText("Name")).toHaveValue("research");
    expect(within(dialog).getByLabelText(/Description/)).toHaveValue("The research group's notebooks and batch jobs");
    expect(within(dialog).getByLabelText("Tokens per day")).toHaveValue("500,000");
    expect(within(dialog).getByLabelText("Requests per month")).toHaveValue("");
    expect(within(dialog).getByLabelText("Requests per minute")).toHaveValue("300");
    expect(within(dialog).getByLabelText("Priority")).toHaveValue(2);
    await user.clear(within(dialog).getByLabelText(/Description/));
    await user.clear(within(dialog).getByLabelText("Tokens per day"));
    await user.type(within(dialog).getByLabelText("Requests per month"), "50k");
    await user.click(within(dialog).getByRole("button", { name: "Save changes" }));

    const patches = server.calls.filter((c) => c.method === "PATCH");
    expect(patches).toHaveLength(1);
    expect(patches[0].path).toBe("/api/teams/1");
    expect(patches[0].body).toEqual({ description: null, daily_token_limit: null, monthly_request_limit: 50_000 });
    expect(await screen.findByText("Saved “research”.")).toBeInTheDocument();
    expect(rowOf("research").querySelector('[data-label="Description"]')).toHaveTextContent("—");
  });

  it("closes the edit dialog without a call when nothing changed", async () => {
    const user = userEvent.setup();
    const { server } = renderTeams();
    await screen.findByRole("row", { name: /research/ });
    await user.click(screen.getByRole("button", { name: "Edit research" }));
    await user.click(within(screen.getByRole("dialog")).getByRole("button", { name: "Save changes" }));
    expect(screen.queryByRole("dialog")).toBeNull();
    expect(server.calls.filter((c) => c.method === "PATCH")).toHaveLength(0);
  });

  it("deletes a team after a confirmation, and shows the API's refusal while it has keys", async () => {
    const user = userEvent.setup();
    const { server } = renderTeams({
      "DELETE /api/teams/1": () => ({ status: 409, body: { error: 'team "research" still has 2 keys; move or delete them first' } }),
      "DELETE /api/teams/2": () => ({ status: 204 }),
    });
    await screen.findByRole("row", { name: /research/ });

    await user.click(screen.getByRole("button", { name: "Delete research" }));
    let confirm = screen.getByRole("alertdialog", { name: "Delete “research”?" });
    expect(confirm).toHaveTextContent("The team still has 2 keys");
    await user.click(within(confirm).getByRole("button", { name: "Delete team" }));
    expect(await within(confirm).findByRole("alert")).toHaveTextContent('team "research" still has 2 keys; move or delete them first');
    expect(rowOf("research")).toBeInTheDocument();
    await user.click(within(confirm).getByRole("button", { name: "Cancel" }));

    await user.click(screen.getByRole("button", { name: "Delete support-bots" }));
    confirm = screen.getByRole("alertdialog", { name: "Delete “support-bots”?" });
    expect(confirm).toHaveTextContent("No key belongs to it");
    await user.click(within(confirm).getByRole("button", { name: "Delete team" }));
    expect(await screen.findByText("Deleted “support-bots”.")).toBeInTheDocument();
    expect(screen.queryByRole("row", { name: /support-bots/ })).toBeNull();
    expect(server.calls.filter((c) => c.method === "DELETE").map((c) => c.path)).toEqual(["/api/teams/1", "/api/teams/2"]);
  });

  it("says why the teams could not be loaded", async () => {
    renderTeams({ "GET /api/teams": () => ({ status: 500, body: { error: "database is locked" } }) });
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Could not load the teams");
    expect(alert).toHaveTextContent("database is locked");
  });
});
