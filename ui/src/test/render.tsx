/** Renders a component inside the signed-in context with a client over a fake server. */
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { createClient } from "../api/client";
import { ClientContext } from "../api/context";
import { ToastProvider } from "../components/Toast";
import { fakeServer, type Handler } from "./fixtures";

export function renderWithApi(ui: ReactElement, routes: Record<string, Handler> = {}) {
  const server = fakeServer({
    "GET /api/ollama-models": () => ({ status: 200, body: { models: [{ name: "llama3:latest" }, { name: "qwen3:8b" }] } }),
    ...routes,
  });
  const client = createClient("secret", { fetch: server.fetch });
  const result = render(
    <ClientContext.Provider value={client}>
      <ToastProvider>{ui}</ToastProvider>
    </ClientContext.Provider>,
  );
  return { ...result, server, client };
}
