/**
 * The typed client of the admin API. Every call sends `Authorization: Bearer <password>`;
 * failures become an {@link ApiError} whose `kind` tells the UI what to show: a wrong
 * password, a throttled address, an unreachable admin API, or the API's own message.
 */
import type {
  Answer,
  AuditEntry,
  AuditQuery,
  CreateKeyBody,
  CreateTeamBody,
  CreatedKey,
  Key,
  KeyUpdateBody,
  OllamaModel,
  QuotaUpdateBody,
  RotateKeyBody,
  RotatedKey,
  SettingsUpdateBody,
  Team,
  TeamUpdateBody,
  UsageQuery,
  UsageRow,
} from "./types";
import { USAGE_DIMENSIONS } from "./types";

export type ErrorKind = "unauthorized" | "throttled" | "unreachable" | "not_found" | "invalid" | "server";

export class ApiError extends Error {
  readonly kind: ErrorKind;
  readonly status: number;
  /** Seconds, for `throttled`. */
  readonly retryAfter?: number;

  constructor(kind: ErrorKind, status: number, message: string, retryAfter?: number) {
    super(message);
    this.name = "ApiError";
    this.kind = kind;
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export interface ClientOptions {
  /** Prefix of every path; empty = the page's own origin (the admin listener, or Vite's proxy). */
  baseUrl?: string;
  fetch?: typeof fetch;
  /** Called on every 401, before the error is thrown (the app signs out). */
  onUnauthorized?: () => void;
}

/** What a failed request means, from its status and body. */
export async function errorFrom(response: Response): Promise<ApiError> {
  let message = "";
  let isJson = false;
  try {
    const text = await response.text();
    try {
      const body = JSON.parse(text) as { error?: unknown };
      isJson = true;
      // The admin API's body is the flat `{"error": "message"}` (`ErrorBody`); the nested
      // `{"error": {"message": …}}` of the OpenAI-style routes is read too.
      if (typeof body.error === "string") message = body.error;
      else if (body.error && typeof (body.error as { message?: unknown }).message === "string") {
        message = (body.error as { message: string }).message;
      }
    } catch {
      /* not JSON: a proxy in between answered */
    }
  } catch {
    /* body unreadable */
  }
  const status = response.status;
  if (status === 401) return new ApiError("unauthorized", status, message || "wrong admin password");
  if (status === 429) {
    const retry = Number(response.headers.get("Retry-After") ?? "60");
    return new ApiError("throttled", status, message || "too many failed login attempts", Number.isFinite(retry) ? retry : 60);
  }
  if (!isJson && status >= 500) {
    // The Vite dev proxy answers 500/502 without JSON when the admin listener is down.
    return new ApiError("unreachable", status, "the admin API did not answer");
  }
  if (status === 404) return new ApiError("not_found", status, message || "not found");
  if (status === 400 || status === 422) return new ApiError("invalid", status, message || "invalid input");
  return new ApiError("server", status, message || `the admin API answered ${status}`);
}

export function createClient(password: string, options: ClientOptions = {}) {
  const base = options.baseUrl ?? "";
  const doFetch = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));

  async function send(method: string, path: string, body?: unknown, accept = "application/json"): Promise<Response> {
    const headers: Record<string, string> = { Authorization: `Bearer ${password}`, Accept: accept };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response: Response;
    try {
      response = await doFetch(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError("unreachable", 0, "cannot reach the admin API");
    }
    if (!response.ok) {
      const error = await errorFrom(response);
      if (error.kind === "unauthorized") options.onUnauthorized?.();
      throw error;
    }
    return response;
  }

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await send(method, path, body);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  /** A file: its bytes and the name the API gives it (`Content-Disposition`), else `fallback`. */
  async function download(path: string, accept: string, fallback: string): Promise<Download> {
    const response = await send("GET", path, undefined, accept);
    return { blob: await response.blob(), filename: filenameFrom(response.headers.get("Content-Disposition")) ?? fallback };
  }

  const key = (id: number) => `/api/api-keys/${encodeURIComponent(String(id))}`;
  const team = (id: number) => `/api/teams/${encodeURIComponent(String(id))}`;

  return {
    listKeys: () => call<Key[]>("GET", "/api/api-keys"),
    getKey: (id: number) => call<Key>("GET", key(id)),
    createKey: (body: CreateKeyBody) => call<CreatedKey>("POST", "/api/api-keys", body),
    updateKey: (id: number, body: KeyUpdateBody) => call<Key>("PATCH", key(id), body),
    updateQuota: (id: number, body: QuotaUpdateBody) =>
      call<Key>("PATCH", `${key(id)}/quota`, body),
    activateKey: (id: number) => call<Key>("PUT", `${key(id)}/activate`),
    deactivateKey: (id: number) => call<Key>("PUT", `${key(id)}/deactivate`),
    deleteKey: (id: number) => call<void>("DELETE", key(id)),
    keyUsage: (id: number, days = 30) => call<Answer<"get_key_usage", 200>>("GET", `${key(id)}/usage?days=${days}`),
    getSettings: () => call<Answer<"get_settings", 200>>("GET", "/api/settings"),
    updateSettings: (body: SettingsUpdateBody) => call<Answer<"update_settings", 200>>("PUT", "/api/settings", body),
    listModels: async () => {
      const answer = await call<Answer<"list_ollama_models", 200>>("GET", "/api/ollama-models");
      return answer.models as unknown as OllamaModel[];
    },
    listUpstreams: () => call<Answer<"list_upstreams", 200>>("GET", "/api/upstreams"),
    showQueue: () => call<Answer<"show_queue", 200>>("GET", "/api/queue"),
    proxyInfo: () => call<Answer<"get_proxy_info", 200>>("GET", "/api/proxy-info"),
    rotateKey: (id: number, body: RotateKeyBody = {}) => call<RotatedKey>("POST", `${key(id)}/rotate`, body),
    listTeams: () => call<Team[]>("GET", "/api/teams"),
    getTeam: (id: number) => call<Team>("GET", team(id)),
    createTeam: (body: CreateTeamBody) => call<Team>("POST", "/api/teams", body),
    updateTeam: (id: number, body: TeamUpdateBody) => call<Team>("PATCH", team(id), body),
    /** Refused (409, the API's message says why) while keys belong to the team. */
    deleteTeam: (id: number) => call<void>("DELETE", team(id)),
    usage: (query: UsageQuery) => call<UsageRow[]>("GET", `/api/usage?${usageSearch(query)}`),
    usageCsv: (query: UsageQuery) =>
      download(`/api/usage?${usageSearch(query)}&format=csv`, "text/csv", `llm-quota-usage-${query.from}_${query.to}.csv`),
    // `Answer<"audit_trail", 200>` with `before`/`after` readable (see `AuditEntry`).
    audit: (query: AuditQuery = {}) => call<AuditEntry[]>("GET", `/api/audit${auditSearch(query)}`),
  };
}

export interface Download {
  blob: Blob;
  filename: string;
}

/**
 * `from=2026-11-01&to=2026-11-30&group_by=key,day` (the dimensions in the UI's order; none =
 * `group_by=`), then `&team_id=3` when the report is about one team's keys.
 */
export function usageSearch(query: UsageQuery): string {
  const groups = USAGE_DIMENSIONS.filter((d) => query.group_by.includes(d));
  const team = query.team_id == null ? "" : `&team_id=${encodeURIComponent(String(query.team_id))}`;
  return `from=${encodeURIComponent(query.from)}&to=${encodeURIComponent(query.to)}&group_by=${groups.join(",")}${team}`;
}

/** `?limit=50&before=17&key_id=3`, leaving out what is not set. */
export function auditSearch(query: AuditQuery): string {
  const parts = (["limit", "before", "key_id"] as const)
    .filter((name) => query[name] !== undefined)
    .map((name) => `${name}=${encodeURIComponent(String(query[name]))}`);
  return parts.length > 0 ? `?${parts.join("&")}` : "";
}

/** The file name of a `Content-Disposition` header (`filename*=UTF-8''…` first, then `filename="…"`). */
export function filenameFrom(header: string | null): string | null {
  if (!header) return null;
  const extended = header.match(/filename\*\s*=\s*UTF-8''([^;]+)/i);
  if (extended) {
    try {
      return baseName(decodeURIComponent(extended[1].trim()));
    } catch {
      /* badly encoded: try the plain parameter */
    }
  }
  const quoted = header.match(/filename\s*=\s*"((?:\\.|[^"\\])*)"/i);
  if (quoted) return baseName(quoted[1].replace(/\\(.)/g, "$1"));
  const bare = header.match(/filename\s*=\s*([^;\s]+)/i);
  return bare ? baseName(bare[1]) : null;
}

function baseName(name: string): string | null {
  const last = name.split(/[\\/]/).pop()?.trim() ?? "";
  return last === "" ? null : last;
}

export type Client = ReturnType<typeof createClient>;

/** A short sentence for people, from any error a call threw. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    switch (error.kind) {
      case "unreachable":
        return "Cannot reach the admin API. Is llm-quota running, and is the SSH tunnel up?";
      case "unauthorized":
        return "The admin password was refused.";
      case "throttled":
        return `Too many failed sign-ins from this address. Try again in ${error.retryAfter ?? 60} s.`;
      default:
        // The API's own message; input errors start with the field's name.
        return error.message;
    }
  }
  return error instanceof Error ? error.message : "Something went wrong.";
}
