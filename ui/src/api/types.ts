/**
 * The admin API's shapes, taken from the OpenAPI document (`schema.d.ts` is generated from
 * `openapi.json` by `npm run gen:api`; a test keeps the two in step, and the end-to-end run
 * checks `openapi.json` against the live `/api/openapi.json`).
 */
import type { components, operations } from "./schema";

type Schemas = components["schemas"];

/** The key object, with the team it belongs to (`null`: none). */
export type Key = Schemas["KeyView"];
export type CreatedKey = Schemas["CreatedKeyView"];
/** The answer of a rotation: the key, its new secret, and until when the old one works (`null`: not at all). */
export type RotatedKey = Schemas["RotatedKeyView"];
export type PeriodUsage = Schemas["PeriodUsage"];
export type DailyUsage = Schemas["DailyUsageView"];
/** `team_id`: the key's team; `null` or left out = none. */
export type CreateKeyBody = Schemas["CreateKey"];
/** `team_id`: `null` = no team, left out = unchanged. */
export type KeyUpdateBody = Schemas["KeyUpdate"];
export type QuotaUpdateBody = Schemas["QuotaUpdate"];
export type Settings = Schemas["SettingsView"];
export type SettingsUpdateBody = Schemas["SettingsUpdate"];
export type Upstream = Schemas["UpstreamStatus"];
export type ProxyInfo = Schemas["ProxyInfoView"];
export type Endpoint = Schemas["EndpointView"];
export type Queue = Schemas["QueueView"];
export type ModelLoad = Schemas["ModelLoadView"];

export type RotateKeyBody = Schemas["RotateKey"];
/** One row of `GET /api/usage`; a dimension not grouped by is `null` (so is the team of a key without one). */
export type UsageRow = Schemas["UsageRowView"];

/** A key's team, as the key object names it. */
export type TeamRef = Schemas["TeamRef"];
/**
 * A team: one budget shared by several keys (`GET /api/teams`, `/api/teams/{id}`). Its limits
 * are the same as a key's (`null` = unlimited) and count the requests of all its keys together.
 */
export type Team = Schemas["TeamView"];
/** `POST /api/teams`: a name, the rest optional (`null` or left out = unlimited, or the default). */
export type CreateTeamBody = Schemas["CreateTeam"];
/** `PATCH /api/teams/{id}`: any subset; left out = unchanged, `null` = unlimited (the description: cleared). */
export type TeamUpdateBody = Schemas["TeamUpdate"];

/**
 * One entry of `GET /api/audit`. The document declares `before` and `after` as free-form
 * objects, which openapi-typescript writes as `Record<string, never>` (no field readable);
 * they hold the changed fields with any JSON values.
 */
export type AuditEntry = Omit<Schemas["AuditEntryView"], "before" | "after"> & {
  /** The changed fields before the change (`null` for a creation). */
  before?: Record<string, unknown> | null;
  /** The changed fields after it (`null` for a deletion). */
  after?: Record<string, unknown> | null;
};

/** `GET /api/audit`'s query: `limit` (1–500, default 50), `before` (an id), `key_id`. */
export type AuditQuery = NonNullable<operations["audit_trail"]["parameters"]["query"]>;

/** A dimension of `GET /api/usage`'s `group_by` (the document types it as a comma-separated string). */
export type UsageDimension = "key" | "model" | "day" | "team";

/** The order the UI sends the dimensions in (and ticks them in the report's filters). */
export const USAGE_DIMENSIONS = ["key", "model", "day", "team"] as const satisfies readonly UsageDimension[];

/** What the report is grouped by at first: the finest rows (a team column only when asked for). */
export const DEFAULT_USAGE_GROUPS = ["key", "model", "day"] as const satisfies readonly UsageDimension[];

/** What the UI asks `GET /api/usage` for (`usageSearch` makes it the query string). */
export interface UsageQuery {
  /** `YYYY-MM-DD`, a day of the operator's zone (inclusive). */
  from: string;
  to: string;
  /** Empty = one grand-total row. */
  group_by: readonly UsageDimension[];
  /** Only the keys of this team (`team_id=`); left out or `null` = every key. */
  team_id?: number | null;
}

/** The JSON body of operation `Op`'s answer with status `S`. */
export type Answer<Op extends keyof operations, S extends number> = operations[Op]["responses"] extends Record<
  S,
  { content: { "application/json": infer T } }
>
  ? T
  : never;

/** One model of `GET /api/ollama-models` (Ollama's `/api/tags` entry; the schema leaves it open). */
export interface OllamaModel {
  name: string;
  model?: string;
  size?: number;
  modified_at?: string;
  details?: { parameter_size?: string; quantization_level?: string; family?: string };
}

/**
 * The six limits of a key, in the order the UI shows them (day, month of each). Tokens and
 * requests are whole numbers; GPU time is seconds with up to 3 decimals (host time × the
 * host's `gpu_weight`).
 */
export const LIMITS = [
  { field: "daily_token_limit", label: "Tokens per day", short: "Tokens today", period: "day", unit: "tokens" },
  { field: "monthly_token_limit", label: "Tokens per month", short: "Tokens this month", period: "month", unit: "tokens" },
  { field: "daily_request_limit", label: "Requests per day", short: "Requests today", period: "day", unit: "requests" },
  { field: "monthly_request_limit", label: "Requests per month", short: "Requests this month", period: "month", unit: "requests" },
  { field: "daily_gpu_seconds_limit", label: "GPU seconds per day", short: "GPU time today", period: "day", unit: "GPU seconds" },
  { field: "monthly_gpu_seconds_limit", label: "GPU seconds per month", short: "GPU time this month", period: "month", unit: "GPU seconds" },
] as const satisfies readonly {
  field: keyof QuotaUpdateBody & keyof CreateKeyBody & keyof Key;
  label: string;
  short: string;
  period: keyof Key["usage"];
  unit: "tokens" | "requests" | "GPU seconds";
}[];

export type Limit = (typeof LIMITS)[number];
export type LimitField = Limit["field"];
export type Limits = Record<LimitField, number | null>;

/** Whether a limit counts GPU time: seconds, shown as durations, typed with decimals. */
export function isSeconds(limit: Limit): boolean {
  return limit.unit === "GPU seconds";
}

/**
 * Whatever has a key's limits and the usage against them: a key, or a team (the same fields,
 * counted over all of its keys).
 */
export type Budgeted = Partial<Record<LimitField | PacingField, number | null>> & {
  priority?: number;
  usage: Key["usage"];
};

export function limitsOf(key: Omit<Budgeted, "usage">): Limits {
  return {
    daily_token_limit: key.daily_token_limit ?? null,
    monthly_token_limit: key.monthly_token_limit ?? null,
    daily_request_limit: key.daily_request_limit ?? null,
    monthly_request_limit: key.monthly_request_limit ?? null,
    daily_gpu_seconds_limit: key.daily_gpu_seconds_limit ?? null,
    monthly_gpu_seconds_limit: key.monthly_gpu_seconds_limit ?? null,
  };
}

/** Whether the key (or team) has a GPU-time limit in either period. */
export function hasGpuLimit(key: Pick<Budgeted, "daily_gpu_seconds_limit" | "monthly_gpu_seconds_limit">): boolean {
  return key.daily_gpu_seconds_limit != null || key.monthly_gpu_seconds_limit != null;
}

/** How much of `limit`'s period the key (or team) has used. */
export function usedOf(key: Pick<Budgeted, "usage">, limit: Limit): number {
  const period = key.usage[limit.period];
  return limit.unit === "tokens" ? period.tokens : limit.unit === "requests" ? period.requests : period.gpu_seconds;
}

/** The key's pacing limits (a sliding minute, a parallel cap), in the order the UI shows them. */
export const PACING = [
  { field: "requests_per_minute", label: "Requests per minute", unit: "requests", hint: "In any 60 seconds" },
  { field: "tokens_per_minute", label: "Tokens per minute", unit: "tokens", hint: "In any 60 seconds" },
  { field: "max_parallel_requests", label: "Max parallel requests", unit: "requests", hint: "At once per instance; more wait in the key's queue" },
] as const satisfies readonly {
  field: keyof QuotaUpdateBody & keyof CreateKeyBody & keyof Key;
  label: string;
  unit: "tokens" | "requests";
  hint: string;
}[];

export type PacingField = (typeof PACING)[number]["field"];

/** A key's weight in the fair queue for busy hosts. */
export const PRIORITY_MIN = 1;
export const PRIORITY_MAX = 10;
export const PRIORITY_DEFAULT = 1;

export type Pacing = Record<PacingField, number | null> & { priority: number };

export function pacingOf(key: Omit<Budgeted, "usage">): Pacing {
  return {
    requests_per_minute: key.requests_per_minute ?? null,
    tokens_per_minute: key.tokens_per_minute ?? null,
    max_parallel_requests: key.max_parallel_requests ?? null,
    priority: key.priority ?? PRIORITY_DEFAULT,
  };
}
