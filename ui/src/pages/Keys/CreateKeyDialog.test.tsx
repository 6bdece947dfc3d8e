import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { makeKey } from "../../test/fixtures";
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
  it("sends the typed limits and models, then shows the plaintext once with a warning and a copy button", async () => {
    const user = userEvent.setup();
    const { server, onCreated, onClose } = setup();
    const dialog = screen.getByRole("dialog", { name: "Create API key" });
    await user.type(within(dialog).getByLabelText("Name"), "build-bot");
    await user.type(within(dialog).getByLabelText("Tokens per day"), "250k");
    await user.type(within(dialog).getByLabelText("Requests per month"), "10,000");
    await user.click(within(dialog).getByRole("radio", { name: "Only these" }));
    await user.click(await within(dialog).findByRole("checkbox", { name: "qwen3:8b" }));
    await user.click(within(dialog).getByRole("button", { name: "Create key" }));

    expect(server.calls.find((c) => c.method === "POST")?.body).toEqual({
      name: "build-bot",
      expires_at: null,
      daily_token_limit: 250_000,
      monthly_token_limit: null,
      daily_request_limit: null,
      monthly_request_limit: 10_000,
      allowed_models: ["qwen3:8b"],
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
});
