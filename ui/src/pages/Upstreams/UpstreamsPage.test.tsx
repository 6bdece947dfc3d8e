import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { renderWithApi } from "../../test/render";
import { UpstreamsPage } from "./UpstreamsPage";

const upstreams = [
  { url: "http://gpu-1:11434", healthy: true, last_check: "2026-11-29T10:00:00+01:00", models: ["llama3:latest", "qwen3:8b"], inflight: 3 },
];

describe("UpstreamsPage", () => {
  it("shows the running and waiting requests per model from /api/queue", async () => {
    const { server } = renderWithApi(<UpstreamsPage />, {
      "GET /api/upstreams": () => ({ status: 200, body: upstreams }),
      "GET /api/queue": () => ({
        status: 200,
        body: {
          models: [
            { model: "llama3", running: 2, waiting: 5 },
            { model: "qwen3:8b", running: 1, waiting: 0 },
          ],
        },
      }),
    });
    const table = await screen.findByRole("table", { name: "Running and waiting requests per model" });
    expect(screen.getByRole("heading", { name: "Load per model" })).toBeInTheDocument();
    expect(within(table).getAllByRole("columnheader").map((h) => h.textContent)).toEqual(["Model", "Running", "Waiting"]);
    const llama = await within(table).findByRole("row", { name: /llama3/ });
    expect(within(llama).getAllByRole("cell").map((c) => c.textContent)).toEqual(["llama3", "2", "5"]);
    const qwen = within(table).getByRole("row", { name: /qwen3:8b/ });
    expect(within(qwen).getAllByRole("cell").map((c) => c.textContent)).toEqual(["qwen3:8b", "1", "0"]);
    // The upstream list is still there.
    expect(screen.getByRole("row", { name: /gpu-1/ })).toHaveTextContent("Healthy");

    // Refresh reloads both.
    const count = (path: string) => server.calls.filter((c) => c.path === path).length;
    const [queueBefore, upstreamsBefore] = [count("/api/queue"), count("/api/upstreams")];
    await userEvent.click(screen.getByRole("button", { name: "Refresh" }));
    expect(count("/api/queue")).toBe(queueBefore + 1);
    expect(count("/api/upstreams")).toBe(upstreamsBefore + 1);
  });

  it("says so when no counted request has run yet", async () => {
    renderWithApi(<UpstreamsPage />, {
      "GET /api/upstreams": () => ({ status: 200, body: upstreams }),
      "GET /api/queue": () => ({ status: 200, body: { models: [] } }),
    });
    expect(await screen.findByText("No counted requests yet")).toBeInTheDocument();
    expect(screen.queryByRole("table", { name: "Running and waiting requests per model" })).toBeNull();
  });

  it("shows one error, not two, when the admin API is unreachable", async () => {
    renderWithApi(<UpstreamsPage />, {
      "GET /api/upstreams": () => "network-error",
      "GET /api/queue": () => "network-error",
    });
    expect(await screen.findByRole("alert")).toHaveTextContent("The admin API is unreachable");
    expect(screen.getAllByRole("alert")).toHaveLength(1);
  });
});
