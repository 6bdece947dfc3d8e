/**
 * The values of the key form (create and edit) as typed, and how they become request bodies.
 * Limits and pacing limits are typed as text (`1,000,000`, `1.5M`, GPU seconds `1,800.5`;
 * empty = unlimited), the priority as a whole number from 1 to 10, and all are checked here so
 * the form can point at the field before the API would.
 */
import {
  LIMITS,
  PACING,
  PRIORITY_DEFAULT,
  PRIORITY_MAX,
  PRIORITY_MIN,
  isSeconds,
  limitsOf,
  pacingOf,
  type CreateKeyBody,
  type Key,
  type KeyUpdateBody,
  type Limit,
  type LimitField,
  type Limits,
  type Pacing,
  type PacingField,
  type QuotaUpdateBody,
} from "../../api/types";
import {
  formatNumber,
  formatSeconds,
  localInputToRfc3339,
  parseLimit,
  parseSeconds,
  rfc3339ToLocalInput,
  type SecondsProblem,
} from "../../format";

export interface KeyFormValues {
  name: string;
  expires: "never" | "at";
  /** `<input type="datetime-local">` value, browser's zone. */
  expiresAt: string;
  limits: Record<LimitField, string>;
  pacing: Record<PacingField, string>;
  /** 1–10, as typed. */
  priority: string;
  models: "all" | "only";
  allowed: string[];
  /** Whether the key may use Ollama's web search tools. */
  webSearch: boolean;
}

export type KeyFormErrors = Partial<Record<"name" | "expiresAt" | "allowed" | "priority" | LimitField | PacingField, string>>;

export function emptyForm(): KeyFormValues {
  return {
    name: "",
    expires: "never",
    expiresAt: "",
    limits: {
      daily_token_limit: "",
      monthly_token_limit: "",
      daily_request_limit: "",
      monthly_request_limit: "",
      daily_gpu_seconds_limit: "",
      monthly_gpu_seconds_limit: "",
    },
    pacing: { requests_per_minute: "", tokens_per_minute: "", max_parallel_requests: "" },
    priority: String(PRIORITY_DEFAULT),
    models: "all",
    allowed: [],
    webSearch: false,
  };
}

export function formOf(key: Key): KeyFormValues {
  const limits = limitsOf(key);
  const pacing = pacingOf(key);
  const text = (v: number | null) => (v === null ? "" : formatNumber(v));
  return {
    name: key.name,
    expires: key.expires_at ? "at" : "never",
    expiresAt: key.expires_at ? rfc3339ToLocalInput(key.expires_at) : "",
    limits: Object.fromEntries(LIMITS.map((l) => [l.field, limitText(l, limits[l.field])])) as Record<LimitField, string>,
    pacing: {
      requests_per_minute: text(pacing.requests_per_minute),
      tokens_per_minute: text(pacing.tokens_per_minute),
      max_parallel_requests: text(pacing.max_parallel_requests),
    },
    priority: String(pacing.priority),
    models: key.allowed_models ? "only" : "all",
    allowed: key.allowed_models ?? [],
    webSearch: key.allow_web_search,
  };
}

export interface ParsedForm {
  name: string;
  expiresAt: string | null;
  limits: Limits;
  pacing: Pacing;
  allowedModels: string[] | null;
  allowWebSearch: boolean;
}

export function parseForm(values: KeyFormValues): { parsed?: ParsedForm; errors: KeyFormErrors } {
  const errors: KeyFormErrors = {};
  const name = values.name.trim();
  if (!name) errors.name = "Give the key a name, e.g. who or what uses it.";
  else if (name.length > 200) errors.name = "At most 200 characters.";
  let expiresAt: string | null = null;
  if (values.expires === "at") {
    expiresAt = localInputToRfc3339(values.expiresAt);
    if (!expiresAt) errors.expiresAt = "Pick a date and time, or choose “Never”.";
  }
  const limits = {} as Limits;
  for (const limit of LIMITS) {
    const read = readLimit(limit, values.limits[limit.field]);
    if ("error" in read) errors[limit.field] = read.error;
    else limits[limit.field] = read.value;
  }
  const pacing = { priority: PRIORITY_DEFAULT } as Pacing;
  for (const limit of PACING) {
    const value = parseLimit(values.pacing[limit.field]);
    if (value === undefined) errors[limit.field] = "A whole number ≥ 0 (1,000 or 1.5M), or empty for no limit.";
    else pacing[limit.field] = value;
  }
  const priority = parsePriority(values.priority);
  if (priority === undefined) errors.priority = `A whole number from ${PRIORITY_MIN} to ${PRIORITY_MAX} (${PRIORITY_DEFAULT} is the default).`;
  else pacing.priority = priority;
  let allowedModels: string[] | null = null;
  if (values.models === "only") {
    allowedModels = values.allowed.map((m) => m.trim()).filter(Boolean);
    if (allowedModels.length === 0) errors.allowed = "Pick at least one model, or allow all local models.";
  }
  if (Object.keys(errors).length > 0) return { errors };
  return { parsed: { name, expiresAt, limits, pacing, allowedModels, allowWebSearch: values.webSearch }, errors };
}

/** A limit's value as the form shows it: `80,000`, GPU seconds to the millisecond (`1.5`, `1,800`). */
function limitText(limit: Limit, value: number | null): string {
  if (value === null) return "";
  return isSeconds(limit) ? formatSeconds(value, 3) : formatNumber(value);
}

const SECONDS_PROBLEMS: Record<SecondsProblem, string> = {
  negative: "cannot be negative",
  decimals: "at most 3 decimals (milliseconds)",
  "not-a-number": "a number of seconds like 3600 or 1,800.5 (a dot for decimals), or empty for no limit",
  "too-large": "too large",
};

/**
 * A limit's text → its value (`null` = unlimited) or what is wrong. GPU-time messages name the
 * field: they are also the likeliest to be misread (decimals, units), and the API's own answer
 * for a bad value starts with the field's name too.
 */
export function readLimit(limit: Limit, text: string): { value: number | null } | { error: string } {
  if (isSeconds(limit)) {
    const read = parseSeconds(text);
    return "problem" in read ? { error: `${limit.label}: ${SECONDS_PROBLEMS[read.problem]}.` } : read;
  }
  const value = parseLimit(text);
  return value === undefined ? { error: "A whole number ≥ 0 (1,000 or 1.5M), or empty for no limit." } : { value };
}

/** `"3"` → 3; anything but a whole number from 1 to 10 → `undefined`. */
export function parsePriority(text: string): number | undefined {
  const clean = text.trim();
  if (!/^\d+$/.test(clean)) return undefined;
  const value = Number(clean);
  return value >= PRIORITY_MIN && value <= PRIORITY_MAX ? value : undefined;
}

export function createBody(p: ParsedForm): CreateKeyBody {
  return {
    name: p.name,
    expires_at: p.expiresAt,
    ...p.limits,
    ...p.pacing,
    allowed_models: p.allowedModels,
    allow_web_search: p.allowWebSearch,
  };
}

/** Only what changed, split by endpoint: `PATCH /api/api-keys/{id}` and `PATCH …/quota`. */
export function updateBodies(key: Key, p: ParsedForm): { key?: KeyUpdateBody; quota?: QuotaUpdateBody } {
  const keyBody: KeyUpdateBody = {};
  if (p.name !== key.name) keyBody.name = p.name;
  const oldExpiry = key.expires_at ? Date.parse(key.expires_at) : null;
  const newExpiry = p.expiresAt ? Date.parse(p.expiresAt) : null;
  // The input has minute precision: compare minutes, so an untouched expiry is not resent.
  const minute = (t: number | null) => (t === null ? null : Math.floor(t / 60_000));
  if (minute(oldExpiry) !== minute(newExpiry)) keyBody.expires_at = p.expiresAt;
  const oldModels = key.allowed_models ?? null;
  if (JSON.stringify(oldModels) !== JSON.stringify(p.allowedModels)) keyBody.allowed_models = p.allowedModels;
  if (key.allow_web_search !== p.allowWebSearch) keyBody.allow_web_search = p.allowWebSearch;
  const quota: QuotaUpdateBody = {};
  const old = limitsOf(key);
  for (const limit of LIMITS) {
    if (old[limit.field] !== p.limits[limit.field]) quota[limit.field] = p.limits[limit.field];
  }
  const oldPacing = pacingOf(key);
  for (const limit of PACING) {
    if (oldPacing[limit.field] !== p.pacing[limit.field]) quota[limit.field] = p.pacing[limit.field];
  }
  if (oldPacing.priority !== p.pacing.priority) quota.priority = p.pacing.priority;
  return {
    key: Object.keys(keyBody).length > 0 ? keyBody : undefined,
    quota: Object.keys(quota).length > 0 ? quota : undefined,
  };
}
