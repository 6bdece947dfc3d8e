import { fireEvent, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { makeTeam, usageRoute, USAGE_ROWS, type Handler } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { UsagePage } from "./UsagePage";

function renderUsage(route: Handler = usageRoute(), teams?: Handler) {
  return renderWithApi(<UsagePage />, { "GET /api/usage": route, ...(teams ? { "GET /api/teams": teams } : {}) });
}

const TEAMS: Handler = () => ({ status: 200, body: [makeTeam(), makeTeam({ id: 2, name: "support", key_count: 0 })] });

const usageCalls = (server: { calls: { path: string }[] }) => server.calls.filter((c) => c.path.startsWith("/api/usage")).map((c) => c.path);

/** The body rows of the rows table, each as its cells' text. */
function tableRows() {
  const table = screen.getByRole("table", { name: /^Usage by/ });
  const [body] = within(table).getAllByRole("rowgroup").slice(1, 2);
  return within(body)
    .getAllByRole("row")
    .map((r) => within(r).getAllByRole("cell").map((c) => c.textContent));
}

function totalRow() {
  const table = screen.getByRole("table", { name: /^Usage by/ });
  return within(table).getByRole("row", { name: /^Total/ });
}

describe("UsagePage", () => {
  beforeEach(() => {
    // Only the clock: user-event's timers stay real.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date(2026, 10, 5, 12, 0));
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  it("asks for this month up to today by key, model and day, and shows the rows with their totals", async () => {
    const { server } = renderUsage();
    expect(screen.getByRole("heading", { name: "Usage", level: 1 })).toBeInTheDocument();
    expect(screen.getByLabelText("From")).toHaveValue("2026-11-01");
    expect(screen.getByLabelText("To")).toHaveValue("2026-11-05");
    for (const name of ["Key", "Model", "Day"]) expect(screen.getByRole("checkbox", { name })).toBeChecked();

    expect(await screen.findByRole("row", { name: /^Total/ })).toBeInTheDocument();
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=key,model,day");
    const table = screen.getByRole("table", { name: /^Usage by/ });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual([
      "Key",
      "Model",
      "Day",
      "Requests",
      "Prompt tokens",
      "Completion tokens",
      "Total tokens",
      "GPU seconds",
    ]);
    const rows = tableRows();
    expect(rows).toHaveLength(USAGE_ROWS.length);
    expect(rows[0]).toEqual(["alice-laptop", "llama3", "2026-11-03", "4", "400", "200", "600", "0.4"]);
    expect(within(table).getAllByRole("link", { name: "alice-laptop" })[0]).toHaveAttribute("href", "/keys/1");
    expect(within(totalRow()).getAllByRole("cell").map((c) => c.textContent)).toEqual(["17", "1,900", "825", "2,725", "1.7"]);
    expect(screen.getByRole("region", { name: "Requests" })).toHaveTextContent("17");
    expect(screen.getByRole("region", { name: "Prompt tokens" })).toHaveTextContent("1,900");
    expect(screen.getByRole("region", { name: "Completion tokens" })).toHaveTextContent("2,725 tokens in all");
  });

  it("groups the rows by what is ticked, and down to one grand total", async () => {
    const user = userEvent.setup();
    const { server } = renderUsage();
    await screen.findByRole("row", { name: /^Total/ });
    await user.click(screen.getByRole("checkbox", { name: "Model" }));
    await user.click(screen.getByRole("checkbox", { name: "Day" }));
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=key");
    await waitFor(() => expect(tableRows()).toHaveLength(2));
    expect(tableRows()).toEqual([
      ["alice-laptop", "11", "1,100", "550", "1,650", "1.1"],
      ["ci-pipeline", "6", "800", "275", "1,075", "0.6"],
    ]);
    expect(within(totalRow()).getAllByRole("cell").map((c) => c.textContent)).toEqual(["17", "1,900", "825", "2,725", "1.7"]);

    await user.click(screen.getByRole("checkbox", { name: "Key" }));
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=");
    await waitFor(() => expect(tableRows()).toEqual([["All keys, models and days", "17", "1,900", "825", "2,725", "1.7"]]));
    expect(screen.getByText(/one row with the grand total/)).toBeInTheDocument();
  });

  it("draws a bar per day stacked by key, or by model, from its own report", async () => {
    const user = userEvent.setup();
    const { server, container } = renderUsage();
    const legend = await screen.findByRole("list", { name: "Keys in the chart" });
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=key,day");
    // Largest first: alice 1,650 tokens, ci 1,075.
    expect(within(legend).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["alice-laptop1,650", "ci-pipeline1,075"]);
    expect(within(legend).getByRole("link", { name: "alice-laptop" })).toHaveAttribute("href", "/keys/1");
    // 5 days on the axis; 3 Nov has both keys, 4 Nov alice, 5 Nov ci.
    expect(container.querySelectorAll(".chart-day")).toHaveLength(5);
    const day = (date: string) => container.querySelector(`.chart-day[data-date="${date}"]`) as Element;
    expect(day("2026-11-03").querySelectorAll("rect.bar")).toHaveLength(2);
    expect(day("2026-11-04").querySelectorAll("rect.bar.series-0")).toHaveLength(1);
    expect(day("2026-11-05").querySelectorAll("rect.bar.series-1")).toHaveLength(1);
    expect(day("2026-11-01").querySelectorAll("rect.bar")).toHaveLength(0);
    expect(screen.getByRole("img", { name: "Tokens per day by key: 2,725 in 5 days" })).toBeInTheDocument();

    await user.click(screen.getByRole("radio", { name: "Model" }));
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=model,day");
    const models = await screen.findByRole("list", { name: "Models in the chart" });
    expect(within(models).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["llama32,500", "qwen3:8b225"]);

    await user.click(screen.getByRole("radio", { name: "Requests" }));
    expect(screen.getByRole("heading", { name: "Requests per day", level: 2 })).toBeInTheDocument();
    expect(screen.getByRole("img", { name: "Requests per day by model: 17 in 5 days" })).toBeInTheDocument();
    // Today is read out first; the arrow keys go back.
    const readout = container.querySelector(".chart-readout") as HTMLElement;
    expect(readout).toHaveTextContent("5 Nov");
    fireEvent.keyDown(screen.getByRole("group", { name: /Usage per day, 5 days/ }), { key: "ArrowLeft" });
    expect(readout).toHaveTextContent("4 Nov");
    expect(readout).toHaveTextContent("6 requests");

    // GPU time: the same stacks in seconds (a tenth of a second per request in the fixture).
    await user.click(screen.getByRole("radio", { name: "GPU time" }));
    expect(screen.getByRole("heading", { name: "GPU seconds per day", level: 2 })).toBeInTheDocument();
    expect(screen.getByRole("img", { name: "GPU seconds per day by model: 1.7 in 5 days" })).toBeInTheDocument();
    expect(readout).toHaveTextContent("0.6 GPU seconds");
    expect(screen.getByRole("region", { name: "GPU time" })).toHaveTextContent("1.7 s");
  });

  it("downloads the same rows as CSV with the admin password, under the API's file name", async () => {
    const user = userEvent.setup();
    const saved: { name: string; href: string }[] = [];
    const blobs: Blob[] = [];
    Object.assign(URL, {
      createObjectURL: vi.fn((blob: Blob) => {
        blobs.push(blob);
        return "blob:usage";
      }),
      revokeObjectURL: vi.fn(),
    });
    vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      saved.push({ name: this.download, href: this.getAttribute("href") ?? "" });
    });
    const { server } = renderUsage();
    await screen.findByRole("row", { name: /^Total/ });
    await user.click(screen.getByRole("checkbox", { name: "Model" }));
    await user.click(screen.getByRole("button", { name: "Download CSV" }));

    await waitFor(() => expect(saved).toHaveLength(1));
    const csv = server.calls.find((c) => c.path.includes("format=csv"));
    expect(csv?.path).toBe("/api/usage?from=2026-11-01&to=2026-11-05&group_by=key,day&format=csv");
    expect(csv?.headers.Authorization).toBe("Bearer secret");
    expect(saved[0]).toEqual({ name: "llm-quota-usage-2026-11-01_2026-11-05.csv", href: "blob:usage" });
    const text = await blobs[0].text();
    expect(text.split("\r\n").slice(0, 2)).toEqual([
      "key_id,key_name,model,date,requests,prompt_tokens,completion_tokens,gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name",
      "1,alice-laptop,,2026-11-03,5,500,250,0.500,0.000,0.000,0.000,,",
    ]);
    expect(screen.getByRole("button", { name: "Download CSV" })).toBeEnabled();
  });

  it("says why a download failed", async () => {
    const user = userEvent.setup();
    renderUsage(({ path }) =>
      path.includes("format=csv") ? { status: 500, body: { error: "database is locked" } } : usageRoute()({ path, method: "GET", body: undefined, headers: {} }),
    );
    await screen.findByRole("row", { name: /^Total/ });
    await user.click(screen.getByRole("button", { name: "Download CSV" }));
    expect(await screen.findByText("The CSV could not be downloaded: database is locked")).toBeInTheDocument();
  });

  it("asks for another range when the dates change, and refuses a last day before the first", async () => {
    const { server } = renderUsage();
    await screen.findByRole("row", { name: /^Total/ });
    fireEvent.change(screen.getByLabelText("From"), { target: { value: "2026-11-04" } });
    await waitFor(() => expect(tableRows()).toHaveLength(3));
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-04&to=2026-11-05&group_by=key,model,day");

    const before = usageCalls(server).length;
    fireEvent.change(screen.getByLabelText("To"), { target: { value: "2026-11-02" } });
    expect(await screen.findByRole("alert")).toHaveTextContent("The last day is before the first day.");
    expect(screen.getByLabelText("To")).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByRole("button", { name: "Download CSV" })).toBeDisabled();
    expect(screen.queryByRole("table", { name: /^Usage by/ })).toBeNull();
    expect(usageCalls(server)).toHaveLength(before);
  });

  it("has an empty state for a range without requests", async () => {
    renderUsage(() => ({ status: 200, body: [] }));
    expect(await screen.findByText("No usage in this range")).toBeInTheDocument();
    expect(screen.getByText(/No request was counted from 1 Nov to 5 Nov/)).toBeInTheDocument();
    expect(screen.queryByRole("table")).toBeNull();
  });

  it("shows the API's message for a refused range, and one error when the admin API is unreachable", async () => {
    const { unmount } = renderUsage(() => ({ status: 422, body: { error: "from: at most 366 days" } }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Could not load the usage");
    expect(screen.getByRole("alert")).toHaveTextContent("from: at most 366 days");
    unmount();

    let up = false;
    renderUsage((request) => (up ? usageRoute()(request) : "network-error"));
    expect(await screen.findByRole("alert")).toHaveTextContent("The admin API is unreachable");
    expect(screen.getAllByRole("alert")).toHaveLength(1);
    up = true;
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("row", { name: /^Total/ })).toBeInTheDocument();
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("has no team filter or grouping without teams", async () => {
    renderUsage();
    await screen.findByRole("row", { name: /^Total/ });
    expect(screen.queryByRole("combobox", { name: "Team" })).toBeNull();
    expect(screen.queryByRole("checkbox", { name: "Team" })).toBeNull();
    expect(screen.queryByRole("radio", { name: "Team" })).toBeNull();
  });

  it("counts only one team's keys when a team is picked, in the rows, the chart and the CSV", async () => {
    const user = userEvent.setup();
    const { server } = renderUsage(usageRoute(), TEAMS);
    await screen.findByRole("row", { name: /^Total/ });
    const team = await screen.findByRole("combobox", { name: "Team" });
    expect(within(team).getAllByRole("option").map((o) => o.textContent)).toEqual(["All keys", "research", "support"]);
    expect(team).toHaveValue("");
    await user.selectOptions(team, "research");
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=key,model,day&team_id=1");
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=key,day&team_id=1");
    // Only alice-laptop is in "research": 11 of the 17 requests.
    await waitFor(() => expect(tableRows()).toHaveLength(3));
    expect(within(totalRow()).getAllByRole("cell")[0]).toHaveTextContent("11");
    const legend = screen.getByRole("list", { name: "Keys in the chart" });
    await waitFor(() => expect(within(legend).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["alice-laptop1,650"]));

    await user.selectOptions(team, "support");
    expect(await screen.findByText(/for the keys of support/)).toBeInTheDocument();
  });

  it("groups the rows by team, with a link to each team and the keys without one as such", async () => {
    const user = userEvent.setup();
    const { server } = renderUsage(usageRoute(), TEAMS);
    await screen.findByRole("row", { name: /^Total/ });
    await user.click(await screen.findByRole("checkbox", { name: "Team" }));
    await user.click(screen.getByRole("checkbox", { name: "Model" }));
    await user.click(screen.getByRole("checkbox", { name: "Day" }));
    await user.click(screen.getByRole("checkbox", { name: "Key" }));
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=team");
    await waitFor(() => expect(tableRows()).toHaveLength(2));
    const table = screen.getByRole("table", { name: /^Usage by/ });
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)[0]).toBe("Team");
    expect(tableRows()).toEqual(
      expect.arrayContaining([
        ["research", "11", "1,100", "550", "1,650", "1.1"],
        ["No team", "6", "800", "275", "1,075", "0.6"],
      ]),
    );
    expect(within(table).getByRole("link", { name: "research" })).toHaveAttribute("href", "/teams/1");

    // With the keys too: the team's column comes first.
    await user.click(screen.getByRole("checkbox", { name: "Key" }));
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=key,team");
    await waitFor(() => expect(within(table).getAllByRole("columnheader").map((h) => h.textContent).slice(0, 2)).toEqual(["Team", "Key"]));
  });

  it("stacks the chart by team", async () => {
    const user = userEvent.setup();
    const { server } = renderUsage(usageRoute(), TEAMS);
    await screen.findByRole("row", { name: /^Total/ });
    await user.click(await screen.findByRole("radio", { name: "Team" }));
    expect(usageCalls(server)).toContain("/api/usage?from=2026-11-01&to=2026-11-05&group_by=day,team");
    const legend = await screen.findByRole("list", { name: "Teams in the chart" });
    expect(within(legend).getAllByRole("listitem").map((li) => li.textContent)).toEqual(["research1,650", "No team1,075"]);
    expect(within(legend).getByRole("link", { name: "research" })).toHaveAttribute("href", "/teams/1");
  });
});
