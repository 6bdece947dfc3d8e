/** Sample answers of the admin API, shaped by its types, and a fake `fetch` that serves them. */
import type { Key } from "../api/types";

export function makeKey(overrides: Partial<Key> = {}): Key {
  return {
    id: 1,
    name: "alice-laptop",
    key_prefix: "sk-AbCd1234",
    is_active: true,
    created_at: "2026-11-01T09:30:00+01:00",
    expires_at: null,
    daily_token_limit: 80_000,
    monthly_token_limit: 1_000_000,
    daily_request_limit: 500,
    monthly_request_limit: null,
    requests_per_minute: 60,
    tokens_per_minute: null,
    max_parallel_requests: 2,
    priority: 1,
    allowed_models: null,
    usage: {
      day: { period: "2026-11-29", requests: 3, tokens: 63, resets_at: "2026-11-30T00:00:00+01:00" },
      month: { period: "2026-11", requests: 120, tokens: 654_321, resets_at: "2026-12-01T00:00:00+01:00" },
    },
    in_flight: { requests: 0, reserved_tokens: 0 },
    ...overrides,
  };
}

export type Handler = (request: { method: string; path: string; body: unknown; headers: Record<string, string> }) =>
  | { status: number; body?: unknown; headers?: Record<string, string> }
  | "network-error";

export interface FakeServer {
  fetch: typeof fetch;
  calls: { method: string; path: string; body: unknown; headers: Record<string, string> }[];
}

/** A `fetch` answering from `routes` (`"GET /api/api-keys"` → handler); unknown routes are 404. */
export function fakeServer(routes: Record<string, Handler>): FakeServer {
  const calls: FakeServer["calls"] = [];
  const fetchImpl = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(String(input), "http://admin.test");
    const method = (init?.method ?? "GET").toUpperCase();
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const body = typeof init?.body === "string" ? JSON.parse(init.body) : undefined;
    const request = { method, path: url.pathname + url.search, body, headers };
    calls.push(request);
    const handler = routes[`${method} ${url.pathname + url.search}`] ?? routes[`${method} ${url.pathname}`];
    const answer = handler ? handler(request) : { status: 404, body: { error: "no such endpoint" } };
    if (answer === "network-error") throw new TypeError("Failed to fetch");
    return new Response(answer.body === undefined ? null : JSON.stringify(answer.body), {
      status: answer.status,
      headers: { "Content-Type": "application/json", ...answer.headers },
    });
  };
  return { fetch: fetchImpl as typeof fetch, calls };
}
