/** Sample answers of the admin API, shaped by its types, and a fake `fetch` that serves them. */
import type { AuditEntry, Key, RotatedKey, Team, UsageRow } from "../api/types";

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
    daily_gpu_seconds_limit: null,
    monthly_gpu_seconds_limit: null,
    requests_per_minute: 60,
    tokens_per_minute: null,
    max_parallel_requests: 2,
    priority: 1,
    allowed_models: null,
    allow_web_search: false,
    usage: {
      day: { period: "2026-11-29", requests: 3, tokens: 63, gpu_seconds: 12.5, resets_at: "2026-11-30T00:00:00+01:00" },
      month: { period: "2026-11", requests: 120, tokens: 654_321, gpu_seconds: 3723.456, resets_at: "2026-12-01T00:00:00+01:00" },
    },
    in_flight: { requests: 0, reserved_tokens: 0 },
    team: null,
    ...overrides,
  };
}

/** A team of the API: one budget its keys share, with the usage of all of them. */
export function makeTeam(overrides: Partial<Team> = {}): Team {
  return {
    id: 1,
    name: "research",
    description: "The research group's notebooks and batch jobs",
    created_at: "2026-11-02T10:15:00+01:00",
    daily_token_limit: 500_000,
    monthly_token_limit: 10_000_000,
    daily_request_limit: 2_000,
    monthly_request_limit: null,
    daily_gpu_seconds_limit: null,
    monthly_gpu_seconds_limit: null,
    requests_per_minute: 300,
    tokens_per_minute: null,
    max_parallel_requests: 8,
    priority: 2,
    allowed_models: null,
    key_count: 2,
    usage: {
      day: { period: "2026-11-29", requests: 42, tokens: 12_345, gpu_seconds: 95.5, resets_at: "2026-11-30T00:00:00+01:00" },
      month: { period: "2026-11", requests: 1_234, tokens: 2_345_678, gpu_seconds: 7_321.25, resets_at: "2026-12-01T00:00:00+01:00" },
    },
    in_flight: { requests: 0, reserved_tokens: 0 },
    ...overrides,
  };
}

/** A rotation's answer: the key with its new prefix, the new secret, and until when the old one works. */
export function makeRotatedKey(overrides: Partial<RotatedKey> = {}): RotatedKey {
  return {
    ...makeKey({ key_prefix: "sk-NeW5678a" }),
    key: "sk-NeW5678abcdEFGH1234ijklMNOP5678qrstUVWX9012",
    old_secret_valid_until: null,
    ...overrides,
  };
}

export type Handler = (request: { method: string; path: string; body: unknown; headers: Record<string, string> }) =>
  /** `body` is sent as JSON, `text` as it is. */
  | { status: number; body?: unknown; text?: string; headers?: Record<string, string> }
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
    const payload = answer.text ?? (answer.body === undefined ? null : JSON.stringify(answer.body));
    return new Response(payload, {
      status: answer.status,
      headers: { "Content-Type": "application/json", ...answer.headers },
    });
  };
  return { fetch: fetchImpl as typeof fetch, calls };
}

export function makeAuditEntry(overrides: Partial<AuditEntry> = {}): AuditEntry {
  return {
    id: 1,
    at: "2026-12-01T16:20:00+01:00",
    client: "127.0.0.1",
    action: "key.limits_changed",
    key_id: 1,
    key_name: "alice-laptop",
    before: { daily_token_limit: 50_000 },
    after: { daily_token_limit: 80_000 },
    ...overrides,
  };
}

/** `n` entries with ids `first`, `first - 1`, … (newest first, as the API pages them). */
export function auditEntries(first: number, n: number, overrides: Partial<AuditEntry> = {}): AuditEntry[] {
  return Array.from({ length: n }, (_, i) =>
    makeAuditEntry({
      id: first - i,
      before: { daily_token_limit: (first - i) * 1000 },
      after: { daily_token_limit: (first - i) * 1000 + 500 },
      ...overrides,
    }),
  );
}

/** GPU time of none (a row before it was measured, or of the `/v1` routes' breakdown). */
export const NO_GPU_TIME = { gpu_seconds: 0, load_seconds: 0, prompt_eval_seconds: 0, eval_seconds: 0 };

/** The team of each key in `USAGE_ROWS`: alice-laptop is in "research", ci-pipeline in none. */
const TEAMS: Record<number, { team_id: number; team_name: string } | undefined> = { 1: { team_id: 1, team_name: "research" } };

/** A row whose GPU time is a tenth of a second per request (none of it reported by Ollama). */
const row = (key_id: number, key_name: string, model: string, date: string, requests: number, prompt: number, completion: number): UsageRow => ({
  key_id,
  key_name,
  model,
  date,
  requests,
  prompt_tokens: prompt,
  completion_tokens: completion,
  ...NO_GPU_TIME,
  gpu_seconds: requests / 10,
  team_id: TEAMS[key_id]?.team_id ?? null,
  team_name: TEAMS[key_id]?.team_name ?? null,
});

/** Three days of two keys and two models, by key, model and day (the API's finest rows). */
export const USAGE_ROWS: UsageRow[] = [
  row(1, "alice-laptop", "llama3", "2026-11-03", 4, 400, 200),
  row(1, "alice-laptop", "qwen3:8b", "2026-11-03", 1, 100, 50),
  row(2, "ci-pipeline", "llama3", "2026-11-03", 2, 300, 100),
  row(1, "alice-laptop", "llama3", "2026-11-04", 6, 600, 300),
  row(2, "ci-pipeline", "llama3", "2026-11-05", 3, 450, 150),
  row(2, "ci-pipeline", "qwen3:8b", "2026-11-05", 1, 50, 25),
];

/**
 * What `GET /api/usage` answers for `group_by` over the rows of `from`–`to` (of `teamId`'s keys
 * only, when given): sums, sorted by date, key id, model.
 */
export function groupUsage(rows: UsageRow[], groupBy: string[], from = "0000-01-01", to = "9999-12-31", teamId: number | null = null): UsageRow[] {
  const sums = new Map<string, UsageRow>();
  for (const r of rows) {
    if (!r.date || r.date < from || r.date > to) continue;
    if (teamId !== null && r.team_id !== teamId) continue;
    const grouped: UsageRow = {
      key_id: groupBy.includes("key") ? r.key_id : null,
      key_name: groupBy.includes("key") ? r.key_name : null,
      model: groupBy.includes("model") ? r.model : null,
      date: groupBy.includes("day") ? r.date : null,
      team_id: groupBy.includes("team") ? (r.team_id ?? null) : null,
      team_name: groupBy.includes("team") ? (r.team_name ?? null) : null,
      requests: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
      ...NO_GPU_TIME,
    };
    const id = JSON.stringify([grouped.date, grouped.key_id, grouped.model, grouped.team_id]);
    const sum = sums.get(id) ?? grouped;
    sum.requests += r.requests;
    sum.prompt_tokens += r.prompt_tokens;
    sum.completion_tokens += r.completion_tokens;
    sum.gpu_seconds += r.gpu_seconds;
    sum.load_seconds += r.load_seconds;
    sum.prompt_eval_seconds += r.prompt_eval_seconds;
    sum.eval_seconds += r.eval_seconds;
    sums.set(id, sum);
  }
  const order = (r: UsageRow) => [r.date ?? "", String(r.key_id ?? 0).padStart(12, "0"), r.model ?? ""].join("|");
  return [...sums.values()].sort((a, b) => (order(a) < order(b) ? -1 : order(a) > order(b) ? 1 : 0));
}

/** `GET /api/usage` over `rows`, JSON or (`format=csv`) CSV with its Content-Disposition. */
export function usageRoute(rows: UsageRow[] = USAGE_ROWS): Handler {
  return ({ path }) => {
    const params = new URL(path, "http://admin.test").searchParams;
    const from = params.get("from") ?? "0000-01-01";
    const to = params.get("to") ?? "9999-12-31";
    const groupBy = params.has("group_by") ? (params.get("group_by") ?? "").split(",").filter(Boolean) : ["key", "model", "day"];
    const team = params.get("team_id");
    const answer = groupUsage(rows, groupBy, from, to, team === null ? null : Number(team));
    if (params.get("format") !== "csv") return { status: 200, body: answer };
    const cell = (v: unknown) => (v === null ? "" : /[",\r\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
    const lines = [
      "key_id,key_name,model,date,requests,prompt_tokens,completion_tokens,gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name",
      ...answer.map((r) =>
        [
          r.key_id,
          r.key_name,
          r.model,
          r.date,
          r.requests,
          r.prompt_tokens,
          r.completion_tokens,
          ...[r.gpu_seconds, r.load_seconds, r.prompt_eval_seconds, r.eval_seconds].map((s) => s.toFixed(3)),
          r.team_id ?? null,
          r.team_name ?? null,
        ]
          .map(cell)
          .join(","),
      ),
    ];
    return {
      status: 200,
      text: lines.join("\r\n") + "\r\n",
      headers: {
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": `attachment; filename="llm-quota-usage-${from}_${to}.csv"`,
      },
    };
  };
}
