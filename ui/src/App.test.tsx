import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { fakeServer, makeAuditEntry, makeKey, makeTeam, usageRoute, type Handler } from "./test/fixtures";

function renderApp(routes: Record<string, Handler>) {
  const server = fakeServer(routes);
  const options = { fetch: server.fetch };
  render(<App clientOptions={options} />);
  return server;
}

describe("App", () => {
  it("keeps the password in sessionStorage only, and signing out clears it", async () => {
    renderApp({
      "GET /api/settings": () => ({ status: 200, body: {} }),
      "GET /api/api-keys": () => ({ status: 200, body: [makeKey()] }),
    });
    await userEvent.type(screen.getByLabelText("Admin password"), "s3cret");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("heading", { name: "API keys", level: 1 })).toBeInTheDocument();
    expect(Object.values({ ...window.sessionStorage })).toContain("s3cret");
    expect(window.localStorage.length).toBe(0);
    await userEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(screen.getByRole("heading", { name: "Sign in" })).toBeInTheDocument();
    expect(window.sessionStorage.length).toBe(0);
  });

  it("signs out with a notice when the password stops working", async () => {
    window.sessionStorage.setItem("llm-quota.admin-password", "old");
    renderApp({ "GET /api/api-keys": () => ({ status: 401, body: { error: "missing or wrong admin password" } }) });
    expect(await screen.findByText(/no longer accepted/)).toBeInTheDocument();
    expect(window.sessionStorage.length).toBe(0);
  });

  it("shows an empty state with a way to create the first key", async () => {
    window.sessionStorage.setItem("llm-quota.admin-password", "pw");
    renderApp({ "GET /api/api-keys": () => ({ status: 200, body: [] }) });
    expect(await screen.findByText("No API keys yet")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Create the first key" })).toBeInTheDocument();
  });

  it("says the admin API is unreachable, and recovers on retry", async () => {
    window.sessionStorage.setItem("llm-quota.admin-password", "pw");
    let up = false;
    renderApp({ "GET /api/api-keys": () => (up ? { status: 200, body: [makeKey()] } : "network-error") });
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("The admin API is unreachable");
    expect(alert).toHaveTextContent("SSH tunnel");
    up = true;
    await userEvent.click(screen.getByRole("button", { name: "Try again" }));
    expect(await screen.findByRole("link", { name: "alice-laptop" })).toBeInTheDocument();
    expect(screen.queryByRole("alert")).toBeNull();
  });

  it("routes /keys/{id} to the key page, and unknown ids to a clear message", async () => {
    window.sessionStorage.setItem("llm-quota.admin-password", "pw");
    window.history.replaceState(null, "", "/keys/7");
    renderApp({
      "GET /api/api-keys/7": () => ({ status: 404, body: { error: "no API key with id 7" } }),
      "GET /api/api-keys/7/usage": () => ({ status: 404, body: { error: "no API key with id 7" } }),
    });
    expect(await screen.findByText("There is no key with id 7")).toBeInTheDocument();
  });

  it("has Usage and Audit in the navigation, each with its own address", async () => {
    window.sessionStorage.setItem("llm-quota.admin-password", "pw");
    // jsdom has no scrolling; navigate() scrolls to the top.
    const scroll = vi.spyOn(window, "scrollTo").mockImplementation(() => {});
    renderApp({
      "GET /api/api-keys": () => ({ status: 200, body: [makeKey()] }),
      "GET /api/usage": usageRoute(),
      "GET /api/audit": () => ({ status: 200, body: [makeAuditEntry()] }),
    });
    const nav = await screen.findByRole("navigation", { name: "Main" });
    expect(within(nav).getAllByRole("link").map((l) => l.textContent)).toEqual(["API keys", "Teams", "Usage", "Audit", "Upstreams", "Settings", "Connect"]);
    await userEvent.click(within(nav).getByRole("link", { name: "Usage" }));
    expect(window.location.pathname).toBe("/usage");
    expect(await screen.findByRole("heading", { name: "Usage", level: 1 })).toBeInTheDocument();
    expect(within(nav).getByRole("link", { name: "Usage" })).toHaveAttribute("aria-current", "page");
    await userEvent.click(within(nav).getByRole("link", { name: "Audit" }));
    expect(window.location.pathname).toBe("/audit");
    expect(await screen.findByRole("heading", { name: "Audit", level: 1 })).toBeInTheDocument();
    expect(await screen.findByText("Limits changed")).toBeInTheDocument();
    expect(document.title).toBe("Audit · llm-quota admin");
    scroll.mockRestore();
  });

  it("has Teams next to the keys: the list at /teams, a team at /teams/{id}, unknown ids said clearly", async () => {
    window.sessionStorage.setItem("llm-quota.admin-password", "pw");
    const scroll = vi.spyOn(window, "scrollTo").mockImplementation(() => {});
    renderApp({
      "GET /api/api-keys": () => ({ status: 200, body: [makeKey({ team: { id: 1, name: "research" } })] }),
      "GET /api/teams": () => ({ status: 200, body: [makeTeam()] }),
      "GET /api/teams/1": () => ({ status: 200, body: makeTeam() }),
      "GET /api/teams/9": () => ({ status: 404, body: { error: "no team with id 9" } }),
      "GET /api/usage": usageRoute(),
    });
    const nav = await screen.findByRole("navigation", { name: "Main" });
    await userEvent.click(within(nav).getByRole("link", { name: "Teams" }));
    expect(window.location.pathname).toBe("/teams");
    expect(await screen.findByRole("heading", { name: "Teams", level: 1 })).toBeInTheDocument();
    expect(within(nav).getByRole("link", { name: "Teams" })).toHaveAttribute("aria-current", "page");
    expect(within(nav).getByRole("link", { name: "API keys" })).not.toHaveAttribute("aria-current");
    await userEvent.click(await screen.findByRole("link", { name: "research" }));
    expect(window.location.pathname).toBe("/teams/1");
    expect(await screen.findByRole("heading", { name: "research", level: 1 })).toBeInTheDocument();
    expect(document.title).toBe("research · llm-quota admin");
    expect(within(nav).getByRole("link", { name: "Teams" })).toHaveAttribute("aria-current", "page");
    scroll.mockRestore();
  });

  it("routes an unknown team id to a clear message", async () => {
    window.sessionStorage.setItem("llm-quota.admin-password", "pw");
    window.history.replaceState(null, "", "/teams/9");
    renderApp({
      "GET /api/api-keys": () => ({ status: 200, body: [] }),
      "GET /api/teams/9": () => ({ status: 404, body: { error: "no team with id 9" } }),
      "GET /api/usage": () => ({ status: 200, body: [] }),
    });
    expect(await screen.findByText("There is no team with id 9")).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Back to the teams" })).toHaveAttribute("href", "/teams");
  });
});
