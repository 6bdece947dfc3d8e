/**
 * The values of the key form (create and edit) as typed, and how they become request bodies.
 * Limits and pacing limits are typed as text (`1,000,000`, `1.5M`, GPU seconds `1,800.5`;
 * empty = unlimited), the priority as a whole number from 1 to 10, and all are checked here so
 * the form can point at the field before the API would. The budget part (limits, pacing,
 * priority, models) is the team form's too (`../Teams/teamForm.ts`).
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
  type Budgeted,
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

/** The budget of a key or a team as typed: limits, pacing, priority, models. */
export interface BudgetFormValues {
  limits: Record<LimitField, string>;
  pacing: Record<PacingField, string>;
  /** 1–10, as typed. */
  priority: string;
  models: "all" | "only";
  allowed: string[];
}

export type BudgetFormErrors = Partial<Record<"allowed" | "priority" | LimitField | PacingField, string>>;

export interface KeyFormValues extends BudgetFormValues {
  name: string;
  /** The team's id as the select has it; `""` = no team. */
  team: string;
  expires: "never" | "at";
  /** `<input type="datetime-local">` value, browser's zone. */
  expiresAt: string;
  /** Whether the key may use Ollama's web search tools. */
  webSearch: boolean;
}

export type KeyFormErrors = BudgetFormErrors & Partial<Record<"name" | "expiresAt", string>>;

export function emptyBudget(): BudgetFormValues {
  return {
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
  };
}

/** An empty key form; `teamId` picks the team at first (creating a key from a team's page). */
export function emptyForm(teamId: number | null = null): KeyFormValues {
  return {
    name: "",
    team: teamId === null ? "" : String(teamId),
    expires: "never",
    expiresAt: "",
    ...emptyBudget(),
    webSearch: false,
  };
}

/** The budget of a key or a team as the form shows it. */
export function budgetOf(holder: Omit<Budgeted, "usage"> & { allowed_models?: string[] | null }): BudgetFormValues {
  const limits = limitsOf(holder);
  const pacing = pacingOf(holder);
  const text = (v: number | null) => (v === null ? "" : formatNumber(v));
  return {
    limits: Object.fromEntries(LIMITS.map((l) => [l.field, limitText(l, limits[l.field])])) as Record<LimitField, string>,
    pacing: {
      requests_per_minute: text(pacing.requests_per_minute),
      tokens_per_minute: text(pacing.tokens_per_minute),
      max_parallel_requests: text(pacing.max_parallel_requests),
    },
    priority: String(pacing.priority),
    models: holder.allowed_models ? "only" : "all",
    allowed: holder.allowed_models ?? [],
  };
}

export function formOf(key: Key): KeyFormValues {
  return {
    name: key.name,
    team: key.team ? String(key.team.id) : "",
    expires: key.expires_at ? "at" : "never",
    expiresAt: key.expires_at ? rfc3339ToLocalInput(key.expires_at) : "",
    ...budgetOf(key),
    webSearch: key.allow_web_search,
  };
}

export interface ParsedBudget {
  limits: Limits;
  pacing: Pacing;
  allowedModels: string[] | null;
}

export interface ParsedForm extends ParsedBudget {
  name: string;
  /** `null` = no team. */
  teamId: number | null;
  expiresAt: string | null;
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
  const budget = parseBudget(values, errors);
  if (!budget || Object.keys(errors).length > 0) return { errors };
  const teamId = values.team === "" ? null : Number(values.team);
  return { parsed: { name, teamId, expiresAt, ...budget, allowWebSearch: values.webSearch }, errors };
}

/** Reads the budget part of a form; what is wrong goes into `errors` (then the answer is `undefined`). */
export function parseBudget(values: BudgetFormValues, errors: BudgetFormErrors): ParsedBudget | undefined {
  const before = Object.keys(errors).length;
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
  if (Object.keys(errors).length > before) return undefined;
  return { limits, pacing, allowedModels };
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
    // Left out without a team (the same as `null`), so the body stays what it was before teams.
    ...(p.teamId === null ? {} : { team_id: p.teamId }),
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
  if ((key.team?.id ?? null) !== p.teamId) keyBody.team_id = p.teamId;
  const quota = budgetChanges(key, p);
  return {
    key: Object.keys(keyBody).length > 0 ? keyBody : undefined,
    quota: Object.keys(quota).length > 0 ? quota : undefined,
  };
}

/** The limits, pacing limits and priority that differ from `old`'s (the models are not in it). */
export function budgetChanges(old: Omit<Budgeted, "usage">, p: ParsedBudget): QuotaUpdateBody {
  const quota: QuotaUpdateBody = {};
  const oldLimits = limitsOf(old);
  for (const limit of LIMITS) {
    if (oldLimits[limit.field] !== p.limits[limit.field]) quota[limit.field] = p.limits[limit.field];
  }
  const oldPacing = pacingOf(old);
  for (const limit of PACING) {
    if (oldPacing[limit.field] !== p.pacing[limit.field]) quota[limit.field] = p.pacing[limit.field];
  }
  if (oldPacing.priority !== p.pacing.priority) quota.priority = p.pacing.priority;
  return quota;
}
