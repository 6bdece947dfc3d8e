import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Key, Team } from "../../api/types";
import { makeKey, makeTeam, usageRoute, type Handler } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { TeamDetailPage } from "./TeamDetailPage";

const PLAINTEXT = "sk-TeAm1234efGH5678ijKL9012mnOP3456qrST7890uvW";

const research = { id: 1, name: "research" };
const keys: Key[] = [
  makeKey({ id: 1, name: "alice-laptop", team: research }),
  makeKey({ id: 2, name: "ci-pipeline", key_prefix: "sk-Zz99Yy88", team: null }),
  makeKey({ id: 3, name: "bob-notebook", key_prefix: "sk-Bb00Bb00", is_active: false, team: research }),
  makeKey({ id: 4, name: "support-bot", key_prefix: "sk-Sp00Sp00", team: { id: 2, name: "support" } }),
];

function renderTeam(team: Team = makeTeam(), routes: Record<string, Handler> = {}) {
  return renderWithApi(<TeamDetailPage id={team.id} />, {
    [`GET /api/teams/${team.id}`]: () => ({ status: 200, body: team }),
    "GET /api/api-keys": () => ({ status: 200, body: keys }),
    "GET /api/teams": () => ({ status: 200, body: [makeTeam(), makeTeam({ id: 2, name: "support" })] }),
    "GET /api/usage": usageRoute(),
    ...routes,
  });
}

describe("TeamDetailPage", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date(2026, 10, 5, 12, 0));
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("shows the team, its description, key count and the shared budget of the day and month", async () => {
    renderTeam(makeTeam({ daily_gpu_seconds_limit: 3600 }));
    expect(await screen.findByRole("heading", { name: "research", level: 1 })).toBeInTheDocument();
    expect(screen.getByText("The research group's notebooks and batch jobs")).toBeInTheDocument();
    expect(screen.getByTestId("team-key-count")).toHaveTextContent("2");
    expect(screen.getByTestId("in-flight")).toHaveTextContent("None");
    expect(screen.getByRole("link", { name: "Teams" })).toHaveAttribute("href", "/teams");

    const tokens = screen.getByRole("region", { name: "Tokens today" });
    expect(tokens).toHaveTextContent("487,655 tokens left");
    expect(tokens).toHaveTextContent("12,345 / 500,000");
    expect(tokens).toHaveTextContent("Resets");
    expect(screen.getByRole("region", { name: "Requests today" })).toHaveTextContent("1,958 requests left");
    expect(screen.getByRole("region", { name: "Requests this month" })).toHaveTextContent("1,234 used · no limit");
    const gpu = screen.getByRole("region", { name: "GPU time today" });
    expect(gpu).toHaveTextContent("58 m 25 s left");
    expect(within(gpu).getByRole("meter", { name: "GPU seconds today" })).toHaveAttribute("aria-valuetext", "95.5 of 3,600");

    expect(screen.getByRole("region", { name: "Requests per minute" })).toHaveTextContent("300 requests");
    expect(screen.getByRole("region", { name: "Requests per minute" })).toHaveTextContent("all its keys together");
    expect(screen.getByRole("region", { name: "Tokens per minute" })).toHaveTextContent("No limit");
    expect(screen.getByRole("region", { name: "Priority" })).toHaveTextContent("2 of 10");
  });

  it("lists the team's keys (and only those) with links to each, from the keys list", async () => {
    renderTeam();
    const members = await screen.findByRole("table", { name: "Keys of research, with their own limits and current usage" });
    const names = within(members)
      .getAllByRole("link")
      .map((l) => [l.textContent, l.getAttribute("href")]);
    expect(names).toEqual([
      ["alice-laptop", "/keys/1"],
      ["bob-notebook", "/keys/3"],
    ]);
    expect(within(members).getByRole("row", { name: /bob-notebook/ })).toHaveTextContent("Inactive");
    expect(within(members).queryByRole("columnheader", { name: "Team" })).toBeNull();
  });

  it("says when no key belongs to the team yet", async () => {
    renderTeam(makeTeam({ id: 5, name: "empty", key_count: 0 }));
    expect(await screen.findByText(/No key belongs to this team yet/)).toBeInTheDocument();
  });

  it("draws 30 days of the team's usage, stacked by its keys (team_id=)", async () => {
    const { server } = renderTeam();
    const legend = await screen.findByRole("list", { name: "Keys in the chart" });
    expect(server.calls.map((c) => c.path)).toContain("/api/usage?from=2026-10-07&to=2026-11-05&group_by=key,day&team_id=1");
    // Only alice-laptop is in the team in the usage fixture.
    expect(within(legend).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["alice-laptop1,650"]);
    await userEvent.click(screen.getByRole("radio", { name: "Requests" }));
    expect(screen.getByRole("img", { name: "Requests per day by key: 11 in 30 days" })).toBeInTheDocument();
  });

  it("creates a key in the team: the dialog has the team picked, the body names it, the key joins the list", async () => {
    const user = userEvent.setup();
    const { server } = renderTeam(makeTeam(), {
      "POST /api/api-keys": ({ body }) => ({
        status: 201,
        body: { ...makeKey({ id: 9, name: (body as { name: string }).name, team: research }), key: PLAINTEXT },
      }),
    });
    await screen.findByRole("table", { name: /^Keys of research/ });
    await user.click(screen.getByRole("button", { name: "Create a key in this team" }));
    const dialog = screen.getByRole("dialog", { name: "Create API key" });
    const team = within(dialog).getByLabelText("Team");
    await waitFor(() => expect(team).toBeEnabled());
    expect(team).toHaveValue("1");
    expect(within(team).getAllByRole("option").map((o) => o.textContent)).toEqual(["— none —", "research", "support"]);
    await user.type(within(dialog).getByLabelText("Name"), "carol-notebook");
    await user.click(within(dialog).getByRole("button", { name: "Create key" }));
    expect(server.calls.find((c) => c.method === "POST")?.body).toMatchObject({ name: "carol-notebook", team_id: 1 });
    const created = await screen.findByRole("dialog", { name: "Key created" });
    await user.click(within(created).getByRole("button", { name: /I have stored the key/ }));
    const members = screen.getByRole("table", { name: /^Keys of research/ });
    expect(within(members).getByRole("link", { name: "carol-notebook" })).toHaveAttribute("href", "/keys/9");
  });

  it("edits the team from its page", async () => {
    const user = userEvent.setup();
    const { server } = renderTeam(makeTeam(), {
      "PATCH /api/teams/1": ({ body }) => ({ status: 200, body: makeTeam(body as Partial<Team>) }),
    });
    await screen.findByRole("heading", { name: "research", level: 1 });
    await user.click(screen.getByRole("button", { name: "Edit" }));
    const dialog = screen.getByRole("dialog", { name: "Edit “research”" });
    await user.clear(within(dialog).getByLabelText("Name"));
    await user.type(within(dialog).getByLabelText("Name"), "research-lab");
    await user.clear(within(dialog).getByLabelText("Requests per day"));
    await user.type(within(dialog).getByLabelText("Requests per day"), "3,000");
    await user.click(within(dialog).getByRole("button", { name: "Save changes" }));
    expect(server.calls.find((c) => c.method === "PATCH")?.body).toEqual({ name: "research-lab", daily_request_limit: 3_000 });
    expect(await screen.findByRole("heading", { name: "research-lab", level: 1 })).toBeInTheDocument();
    expect(screen.getByRole("region", { name: "Requests today" })).toHaveTextContent("2,958 requests left");
  });

  it("shows the API's refusal to delete a team with keys, and goes back to the list once deleted", async () => {
    const user = userEvent.setup();
    const scroll = vi.spyOn(window, "scrollTo").mockImplementation(() => {});
    let keysLeft = true;
    renderTeam(makeTeam(), {
      "DELETE /api/teams/1": () =>
        keysLeft ? { status: 409, body: { error: 'team "research" still has 2 keys; move or delete them first' } } : { status: 204 },
    });
    window.history.replaceState(null, "", "/teams/1");
    await screen.findByRole("heading", { name: "research", level: 1 });
    await user.click(screen.getByRole("button", { name: "Delete" }));
    const confirm = screen.getByRole("alertdialog", { name: "Delete “research”?" });
    await user.click(within(confirm).getByRole("button", { name: "Delete team" }));
    expect(await within(confirm).findByRole("alert")).toHaveTextContent('team "research" still has 2 keys; move or delete them first');
    expect(window.location.pathname).toBe("/teams/1");

    keysLeft = false;
    await user.click(within(confirm).getByRole("button", { name: "Delete team" }));
    await waitFor(() => expect(window.location.pathname).toBe("/teams"));
    scroll.mockRestore();
  });

  it("says when there is no such team", async () => {
    renderWithApi(<TeamDetailPage id={7} />, {
      "GET /api/teams/7": () => ({ status: 404, body: { error: "no team with id 7" } }),
      "GET /api/api-keys": () => ({ status: 200, body: keys }),
      "GET /api/usage": () => ({ status: 200, body: [] }),
    });
    expect(await screen.findByText("There is no team with id 7")).toBeInTheDocument();
  });
});
