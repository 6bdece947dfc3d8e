/** How the audit trail reads: the actions, the fields and their values in words. */
import { LIMITS, PACING, isSeconds } from "../../api/types";
import { formatNumber, formatSeconds, formatTime } from "../../format";

const ACTIONS: Record<string, { label: string; tone: "add" | "change" | "remove" | "info" }> = {
  "key.created": { label: "Key created", tone: "add" },
  "key.edited": { label: "Key edited", tone: "change" },
  "key.limits_changed": { label: "Limits changed", tone: "change" },
  "key.activated": { label: "Key activated", tone: "add" },
  "key.deactivated": { label: "Key deactivated", tone: "remove" },
  "key.rotated": { label: "Secret rotated", tone: "change" },
  "key.deleted": { label: "Key deleted", tone: "remove" },
  "team.created": { label: "Team created", tone: "add" },
  "team.edited": { label: "Team edited", tone: "change" },
  "team.deleted": { label: "Team deleted", tone: "remove" },
  "settings.changed": { label: "Settings changed", tone: "change" },
  "alert.sent": { label: "Alert sent", tone: "info" },
};

/** The team a `team.*` entry is about (`team_id` and `name` in its values), else `null`. */
export function teamOf(entry: { action: string; before?: Record<string, unknown> | null; after?: Record<string, unknown> | null }): { id: number; name: string } | null {
  if (!entry.action.startsWith("team.")) return null;
  const side = entry.after ?? entry.before;
  const id = side?.team_id;
  if (typeof id !== "number") return null;
  return { id, name: typeof side?.name === "string" ? side.name : `team ${id}` };
}

/** `key.limits_changed` → "Limits changed"; an action this UI does not know is shown as it is. */
export function actionOf(action: string): { label: string; tone: "add" | "change" | "remove" | "info" } {
  return ACTIONS[action] ?? { label: action, tone: "info" };
}

/** The names of the limits in an alert (`daily_tokens`) and of the key's fields. */
const ALERT_LIMITS: Record<string, string> = {
  daily_tokens: "Tokens per day",
  monthly_tokens: "Tokens per month",
  daily_requests: "Requests per day",
  monthly_requests: "Requests per month",
  daily_gpu_seconds: "GPU seconds per day",
  monthly_gpu_seconds: "GPU seconds per month",
};

/** The key's GPU-time limits: seconds with up to 3 decimals, which `formatNumber` would round. */
const SECONDS_FIELDS = new Set<string>(LIMITS.filter(isSeconds).map((l) => l.field));

/** An alert's `used` and `limit_value` are in the limit's unit, for GPU time milliseconds. */
function isGpuAlert(entry: Record<string, unknown> | undefined): boolean {
  return typeof entry?.limit === "string" && entry.limit.endsWith("_gpu_seconds");
}

const FIELDS: Record<string, string> = {
  name: "Name",
  description: "Description",
  team: "Team",
  key_prefix: "Prefix",
  is_active: "Status",
  expires_at: "Expires",
  priority: "Priority",
  allowed_models: "Models",
  allow_web_search: "Web search",
  old_secret_valid_until: "Old secret",
  ollama_urls: "Ollama URLs",
  default_model: "Default model",
  limit: "Limit",
  threshold: "Threshold",
  used: "Used",
  limit_value: "Limit value",
  period: "Period",
  delivered: "Delivered",
  ...Object.fromEntries([...LIMITS, ...PACING].map((l) => [l.field, l.label])),
};

/** What `null` means for a field. */
const NULLS: Record<string, string> = {
  expires_at: "never",
  team: "no team",
  allowed_models: "all local models",
  old_secret_valid_until: "stops at once",
  ollama_urls: "from configuration",
  default_model: "from configuration",
  ...Object.fromEntries([...LIMITS, ...PACING].map((l) => [l.field, "no limit"])),
};

export function fieldLabel(field: string): string {
  return FIELDS[field] ?? field;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

/** One value of `before` or `after` (`entry`: the object it is from), for people. */
export function valueText(field: string, value: unknown, entry?: Record<string, unknown>): string {
  if (value === null || value === undefined) return NULLS[field] ?? "none";
  if (typeof value === "number" && SECONDS_FIELDS.has(field)) return `${formatSeconds(value, 3)} s`;
  if (typeof value === "number" && (field === "used" || field === "limit_value") && isGpuAlert(entry)) return `${formatSeconds(value / 1000, 3)} s`;
  if (field === "is_active" && typeof value === "boolean") return value ? "active" : "inactive";
  if (field === "allow_web_search" && typeof value === "boolean") return value ? "allowed" : "not allowed";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (field === "threshold" && typeof value === "number") return `${Math.round(value * 100)}%`;
  if (typeof value === "number") return formatNumber(value);
  if (typeof value === "string") {
    if (field === "key_prefix") return `${value}…`;
    if (field === "limit") return ALERT_LIMITS[value] ?? value;
    if (RFC3339.test(value)) return field === "old_secret_valid_until" ? `works until ${formatTime(value)}` : formatTime(value);
    return value;
  }
  if (Array.isArray(value)) return value.length === 0 ? "none" : value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ");
  return JSON.stringify(value);
}

export interface FieldChange {
  field: string;
  label: string;
  /** Absent when the side is `null` (a creation) or does not name the field. */
  before?: string;
  after?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The order fields are listed in: as the key page shows them (name, prefix, status, expiry,
 * limits, pacing, models), then settings and alerts. The API's objects come with their
 * fields sorted by name, which reads as no order at all; fields not named here go last.
 */
const ORDER = [
  "name",
  "description",
  "team",
  "key_prefix",
  "is_active",
  "expires_at",
  ...LIMITS.map((l) => l.field),
  ...PACING.map((l) => l.field),
  "priority",
  "allowed_models",
  "allow_web_search",
  "old_secret_valid_until",
  "ollama_urls",
  "default_model",
  "limit",
  "threshold",
  "used",
  "limit_value",
  "period",
  "delivered",
];

const rank = (field: string) => {
  const i = ORDER.indexOf(field);
  return i === -1 ? ORDER.length : i;
};

/**
 * The changed fields of an entry in the order above (unknown ones in `after`'s order, then
 * `before`'s). A creation (no `before`) and a deletion (no `after`) list only the fields that
 * have a value.
 */
export function changesOf(before: unknown, after: unknown): FieldChange[] {
  const b = isObject(before) ? before : null;
  const a = isObject(after) ? after : null;
  if ((before !== null && !b) || (after !== null && !a)) {
    // Not objects (an entry edited by hand): the whole values.
    return [
      {
        field: "value",
        label: "Value",
        before: before === null ? undefined : JSON.stringify(before),
        after: after === null ? undefined : JSON.stringify(after),
      },
    ];
  }
  // A team entry names its team with `team_id` (and an edit with its `name` on both sides): the
  // trail shows the team in the key column instead, and only what changed here.
  const same = (name: string) => a !== null && b !== null && name in a && name in b && JSON.stringify(a[name]) === JSON.stringify(b[name]);
  const names = [...Object.keys(a ?? {}), ...Object.keys(b ?? {}).filter((k) => !a || !(k in a))]
    .filter((name) => name !== "team_id" && !same(name))
    .map((name, i) => ({ name, i }))
    .sort((x, y) => rank(x.name) - rank(y.name) || x.i - y.i)
    .map((x) => x.name);
  const oneSided = !a || !b;
  return names
    .filter((name) => !oneSided || (a ?? b ?? {})[name] != null)
    .map((name) => ({
      field: name,
      label: fieldLabel(name),
      before: b && name in b ? valueText(name, b[name], b) : undefined,
      after: a && name in a ? valueText(name, a[name], a) : undefined,
    }));
}
