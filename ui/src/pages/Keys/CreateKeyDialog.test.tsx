import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { makeKey, makeTeam } from "../../test/fixtures";
import { renderWithApi } from "../../test/render";
import { CreateKeyDialog } from "./CreateKeyDialog";

const PLAINTEXT = "sk-AbCd1234efGH5678ijKL9012mnOP3456qrST7890uvW";

function setup(onClose = vi.fn(), onCreated = vi.fn()) {
  const rendered = renderWithApi(<CreateKeyDialog onClose={onClose} onCreated={onCreated} />, {
    "POST /api/api-keys": ({ body }) => ({
      status: 201,
      body: { ...makeKey({ id: 9, name: (body as { name: string }).name }), key: PLAINTEXT },
    }),
  });
  return { ...rendered, onClose, onCreated };
}

describe("CreateKeyDialog", () => {
  it("sends the typed limits, pacing and models, then shows the plaintext once with a warning and a copy button", async () => {
    const user = userEvent.setup();
    const { server, onCreated, onClose } = setup();
    const dialog = screen.getByRole("dialog", { name: "Create API key" });
    await user.type(within(dialog).getByLabelText("Name"), "build-bot");
    await user.type(within(dialog).getByLabelText("Tokens per day"), "250k");
    await user.type(within(dialog).getByLabelText("Requests per month"), "10,000");
    await user.type(within(dialog).getByLabelText("GPU seconds per day"), "1.5");
    expect(dialog).toHaveTextContent("1.5 GPU seconds");
    await user.type(within(dialog).getByLabelText("Requests per minute"), "120");
    await user.type(within(dialog).getByLabelText("Max parallel requests"), "3");
    const priority = within(dialog).getByLabelText("Priority");
    expect(priority).toHaveValue(1);
    await user.clear(priority);
    await user.type(priority, "5");
    expect(dialog).toHaveTextContent("5 of 10");
    await user.click(within(dialog).getByRole("radio", { name: "Only these" }));
    await user.click(await within(dialog).findByRole("checkbox", { name: "qwen3:8b" }));
    const webSearch = within(dialog).getByRole("checkbox", { name: "Allow Ollama's web search tools" });
    expect(webSearch).not.toBeChecked();
    await user.click(webSearch);
    await user.click(within(dialog).getByRole("button", { name: "Create key" }));

    expect(server.calls.find((c) => c.method === "POST")?.body).toEqual({
      name: "build-bot",
      expires_at: null,
      daily_token_limit: 250_000,
      monthly_token_limit: null,
      daily_request_limit: null,
      monthly_request_limit: 10_000,
      daily_gpu_seconds_limit: 1.5,
      monthly_gpu_seconds_limit: null,
      requests_per_minute: 120,
      tokens_per_minute: null,
      max_parallel_requests: 3,
      priority: 5,
      allowed_models: ["qwen3:8b"],
      allow_web_search: true,
    });

    const created = await screen.findByRole("dialog", { name: "Key created" });
    expect(created).toHaveTextContent("It will not be shown again");
    expect(within(created).getByLabelText("The new API key")).toHaveValue(PLAINTEXT);
    // The list gets the key without its plaintext.
    expect(onCreated).toHaveBeenCalledTimes(1);
    expect(onCreated.mock.calls[0][0]).not.toHaveProperty("key");
    expect(JSON.stringify(onCreated.mock.calls[0][0])).not.toContain(PLAINTEXT);

    await user.click(within(created).getByRole("button", { name: "Copy key" }));
    expect(await navigator.clipboard.readText()).toBe(PLAINTEXT);
    expect(within(created).getByRole("button", { name: "Copied" })).toBeInTheDocument();

    // Escape does not throw the only copy away; the explicit button closes.
    await user.keyboard("{Escape}");
    expect(screen.getByRole("dialog", { name: "Key created" })).toBeInTheDocument();
    await user.click(within(created).getByRole("button", { name: /I have stored the key/ }));
    expect(onClose).toHaveBeenCalled();
  });

  it("points at invalid fields before calling the API", async () => {
    const user = userEvent.setup();
    const { server } = setup();
    await user.type(screen.getByLabelText("Tokens per day"), "-5");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(screen.getByText(/Give the key a name/)).toBeInTheDocument();
    expect(screen.getByLabelText("Tokens per day")).toHaveAttribute("aria-invalid", "true");
    expect(server.calls.filter((c) => c.method === "POST")).toHaveLength(0);
  });

  it("refuses GPU seconds that are negative, finer than milliseconds or not a number, naming the field", async () => {
    const user = userEvent.setup();
    const { server } = setup();
    await user.type(screen.getByLabelText("Name"), "gpu-capped");
    const day = screen.getByLabelText("GPU seconds per day");
    const month = screen.getByLabelText("GPU seconds per month");
    await user.type(day, "1.2345");
    await user.type(month, "-1");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(day).toHaveAttribute("aria-invalid", "true");
    expect(day).toHaveAccessibleDescription("GPU seconds per day: at most 3 decimals (milliseconds).");
    expect(month).toHaveAttribute("aria-invalid", "true");
    expect(month).toHaveAccessibleDescription("GPU seconds per month: cannot be negative.");
    await user.clear(month);
    await user.type(month, "1,5");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(month).toHaveAccessibleDescription(/^GPU seconds per month: a number of seconds like 3600 or 1,800\.5/);
    expect(server.calls.filter((c) => c.method === "POST")).toHaveLength(0);

    // Thousands separators and up to three decimals are fine, and go out as numbers.
    await user.clear(day);
    await user.type(day, "0.125");
    await user.clear(month);
    await user.type(month, "36,000");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(server.calls.find((c) => c.method === "POST")?.body).toMatchObject({ daily_gpu_seconds_limit: 0.125, monthly_gpu_seconds_limit: 36_000 });
  });

  it("shows the API's message naming a GPU-time limit", async () => {
    const user = userEvent.setup();
    renderWithApi(<CreateKeyDialog onClose={vi.fn()} onCreated={vi.fn()} />, {
      "POST /api/api-keys": () => ({ status: 422, body: { error: "daily_gpu_seconds_limit: at most three decimals (milliseconds), got 0.0001" } }),
    });
    await user.type(screen.getByLabelText("Name"), "x");
    await user.type(screen.getByLabelText("GPU seconds per day"), "5");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("daily_gpu_seconds_limit: at most three decimals");
  });

  it("sends empty pacing fields as null and the default priority, and refuses a priority outside 1–10", async () => {
    const user = userEvent.setup();
    const { server } = setup();
    await user.type(screen.getByLabelText("Name"), "paced");
    await user.type(screen.getByLabelText("Tokens per minute"), "12.5x");
    const priority = screen.getByLabelText("Priority");
    await user.clear(priority);
    await user.type(priority, "11");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(screen.getByLabelText("Tokens per minute")).toHaveAttribute("aria-invalid", "true");
    expect(priority).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByText(/A whole number from 1 to 10/)).toBeInTheDocument();
    expect(server.calls.filter((c) => c.method === "POST")).toHaveLength(0);

    await user.clear(screen.getByLabelText("Tokens per minute"));
    await user.clear(priority);
    await user.type(priority, "1");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(server.calls.find((c) => c.method === "POST")?.body).toMatchObject({
      name: "paced",
      requests_per_minute: null,
      tokens_per_minute: null,
      max_parallel_requests: null,
      priority: 1,
    });
  });

  it("shows the API's message when it refuses the key", async () => {
    const user = userEvent.setup();
    renderWithApi(<CreateKeyDialog onClose={vi.fn()} onCreated={vi.fn()} />, {
      "POST /api/api-keys": () => ({ status: 422, body: { error: "name: must be at most 200 characters" } }),
    });
    await user.type(screen.getByLabelText("Name"), "x");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("name: must be at most 200 characters");
    expect(screen.getByRole("dialog", { name: "Create API key" })).toBeInTheDocument();
  });

  it("shows the API's message naming a pacing field", async () => {
    const user = userEvent.setup();
    renderWithApi(<CreateKeyDialog onClose={vi.fn()} onCreated={vi.fn()} />, {
      "POST /api/api-keys": () => ({ status: 422, body: { error: "requests_per_minute: expected a non-negative integer or null" } }),
    });
    await user.type(screen.getByLabelText("Name"), "x");
    await user.type(screen.getByLabelText("Requests per minute"), "9");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("requests_per_minute: expected a non-negative integer or null");
  });

  it("puts the key in the team picked (— none — leaves team_id out)", async () => {
    const user = userEvent.setup();
    const { server } = renderWithApi(<CreateKeyDialog onClose={vi.fn()} onCreated={vi.fn()} />, {
      "GET /api/teams": () => ({ status: 200, body: [makeTeam(), makeTeam({ id: 2, name: "support" })] }),
      "POST /api/api-keys": ({ body }) => ({ status: 201, body: { ...makeKey({ id: 9, team: { id: 2, name: "support" } }), name: (body as { name: string }).name, key: PLAINTEXT } }),
    });
    const team = screen.getByLabelText("Team");
    await waitFor(() => expect(team).toBeEnabled());
    expect(team).toHaveValue("");
    expect(within(team).getAllByRole("option").map((o) => o.textContent)).toEqual(["— none —", "research", "support"]);
    await user.type(screen.getByLabelText("Name"), "support-bot");
    await user.selectOptions(team, "support");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(server.calls.find((c) => c.method === "POST")?.body).toMatchObject({ name: "support-bot", team_id: 2 });
    expect(await screen.findByRole("dialog", { name: "Key created" })).toBeInTheDocument();
  });

  it("has no team field when the teams cannot be listed and sends no team_id", async () => {
    const user = userEvent.setup();
    const { server } = setup();
    await user.type(screen.getByLabelText("Name"), "plain");
    await user.click(screen.getByRole("button", { name: "Create key" }));
    expect(screen.queryByLabelText("Team")).toBeNull();
    expect(server.calls.find((c) => c.method === "POST")?.body).not.toHaveProperty("team_id");
  });
});
