import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { makeKey, makeTeam, type Handler } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { KeysPage } from "./KeysPage";

const keys = [
  makeKey({ id: 1, name: "alice-laptop", team: { id: 1, name: "research" } }),
  makeKey({ id: 2, name: "ci-pipeline", key_prefix: "sk-Zz99Yy88" }),
  makeKey({ id: 3, name: "bob-notebook", key_prefix: "sk-Bb00Bb00", team: { id: 1, name: "research" } }),
  makeKey({ id: 4, name: "support-bot", key_prefix: "sk-Sp00Sp00", team: { id: 2, name: "support" } }),
];

const TEAMS: Handler = () => ({ status: 200, body: [makeTeam(), makeTeam({ id: 2, name: "support" }), makeTeam({ id: 3, name: "unused" })] });

function renderKeys(teams: Handler = TEAMS, list = keys) {
  return renderWithApi(<KeysPage />, {
    "GET /api/api-keys": () => ({ status: 200, body: list }),
    "GET /api/teams": teams,
  });
}

const shownKeys = () =>
  within(screen.getByRole("table", { name: /^API keys/ }))
    .getAllByRole("row")
    .slice(1)
    .map((r) => within(r).getAllByRole("link")[0].textContent);

describe("KeysPage", () => {
  it("shows each key's team, and filters the keys by team", async () => {
    const user = userEvent.setup();
    renderKeys();
    const alice = await screen.findByRole("row", { name: /alice-laptop/ });
    expect(screen.getByRole("columnheader", { name: "Team" })).toBeInTheDocument();
    expect(within(alice).getByRole("link", { name: "research" })).toHaveAttribute("href", "/teams/1");
    expect(screen.getByRole("row", { name: /ci-pipeline/ }).querySelector('[data-label="Team"]')).toHaveTextContent("—");

    const filter = await screen.findByRole("combobox", { name: "Filter by team" });
    expect(within(filter).getAllByRole("option").map((o) => o.textContent)).toEqual(["All keys", "No team", "research", "support", "unused"]);
    expect(shownKeys()).toEqual(["alice-laptop", "ci-pipeline", "bob-notebook", "support-bot"]);
    await user.selectOptions(filter, "research");
    expect(shownKeys()).toEqual(["alice-laptop", "bob-notebook"]);
    expect(screen.getByText("2 of 4")).toBeInTheDocument();
    await user.selectOptions(filter, "No team");
    expect(shownKeys()).toEqual(["ci-pipeline"]);
    await user.selectOptions(filter, "unused");
    expect(screen.getByText("No key in this team.")).toBeInTheDocument();
    await user.selectOptions(filter, "All keys");
    expect(shownKeys()).toHaveLength(4);
  });

  it("has neither a team column nor a team filter without teams", async () => {
    // A gateway whose API has no teams: the keys have none either.
    renderKeys(
      () => ({ status: 404, body: { error: "no such endpoint" } }),
      keys.map((k) => ({ ...k, team: undefined })),
    );
    await screen.findByRole("row", { name: /ci-pipeline/ });
    expect(screen.queryByRole("columnheader", { name: "Team" })).toBeNull();
    expect(screen.queryByRole("combobox", { name: "Filter by team" })).toBeNull();
    expect(screen.queryByRole("alert")).toBeNull();
  });
});
