/**
 * Numbers and times as the UI shows them. Times keep the offset the admin API wrote (the
 * operator's zone, where quota days and months start and end) and say it: `30 Nov 2026,
 * 00:00 UTC+01:00`.
 */
const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
const compact = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

/** `1234567` → `1,234,567`. */
export function formatNumber(n: number): string {
  return integer.format(n);
}

const oneDecimal = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });
const threeDecimals = new Intl.NumberFormat("en-US", { maximumFractionDigits: 3 });

/**
 * Seconds (of GPU time): `1234.56` → `1,234.6`. With 3 decimals, exactly what the API keeps
 * (milliseconds): `1234.567` → `1,234.567`, for limits as typed and for tooltips.
 */
export function formatSeconds(n: number, decimals: 1 | 3 = 1): string {
  return (decimals === 3 ? threeDecimals : oneDecimal).format(n);
}

/**
 * Seconds as a duration, for GPU time against a limit: `12.5 s`, `2 m 5 s`, `1 h 2 m`,
 * `100 h`. Hours are not folded into days: GPU time is thought of in GPU hours. Above a minute
 * it is rounded to the second, above an hour to the minute (tooltips give the exact value).
 */
export function formatDuration(seconds: number): string {
  // A few milliseconds would round to `0 s`, which reads as nothing used.
  if (seconds > 0 && seconds < 0.05) return `${formatSeconds(seconds, 3)} s`;
  if (Math.round(seconds * 10) < 600) return `${formatSeconds(seconds)} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) {
    const rest = whole % 60;
    return `${Math.floor(whole / 60)} m${rest ? ` ${rest} s` : ""}`;
  }
  const minutes = Math.round(seconds / 60);
  const rest = minutes % 60;
  return `${formatNumber(Math.floor(minutes / 60))} h${rest ? ` ${rest} m` : ""}`;
}

/** `1234567` → `1.2M`; below 10,000 the full number. */
export function formatCompact(n: number): string {
  return Math.abs(n) < 10_000 ? integer.format(n) : compact.format(n);
}

/** Bytes as `4.7 GB`. */
export function formatBytes(n: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = n;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${value.toFixed(value < 10 && unit > 0 ? 1 : 0)} ${units[unit]}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/i;

/** The zone of an RFC 3339 offset: `UTC`, `UTC+01:00`. */
export function zoneLabel(offset: string): string {
  return offset.toUpperCase() === "Z" || offset === "+00:00" ? "UTC" : `UTC${offset}`;
}

/** `2026-11-30T00:00:00+01:00` → `30 Nov 2026, 00:00 UTC+01:00` (the wall clock of its own zone). */
export function formatTime(rfc3339: string, options: { seconds?: boolean; year?: boolean } = {}): string {
  const m = rfc3339.match(RFC3339);
  if (!m) return rfc3339;
  const [, year, month, day, hour, minute, second, offset] = m;
  const date = `${Number(day)} ${MONTHS[Number(month) - 1]}${options.year === false ? "" : ` ${year}`}`;
  const time = options.seconds ? `${hour}:${minute}:${second ?? "00"}` : `${hour}:${minute}`;
  return `${date}, ${time} ${zoneLabel(offset)}`;
}

/** `in 5 h`, `3 min ago`, `in 12 days`. */
export function formatRelative(rfc3339: string, now: number = Date.now()): string {
  const then = Date.parse(rfc3339);
  if (Number.isNaN(then)) return "";
  const seconds = Math.round((then - now) / 1000);
  const abs = Math.abs(seconds);
  let text: string;
  if (abs < 45) return seconds >= 0 ? "in a few seconds" : "just now";
  if (abs < 3600) text = `${Math.round(abs / 60)} min`;
  else if (abs < 86_400) text = `${Math.round(abs / 3600)} h`;
  else {
    const days = Math.round(abs / 86_400);
    text = `${days} day${days === 1 ? "" : "s"}`;
  }
  return seconds >= 0 ? `in ${text}` : `${text} ago`;
}

/** `2026-11-29` → `29 Nov`. */
export function formatDay(date: string): string {
  const m = date.match(/^(\d{4})-(\d{2})-(\d{2})$/);
  if (!m) return date;
  return `${Number(m[3])} ${MONTHS[Number(m[2]) - 1]}`;
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** A `YYYY-MM-DD` day as a UTC midnight, or `null` when it is not a real day. */
function dayValue(date: string): number | null {
  const m = date.match(DATE);
  if (!m) return null;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return new Date(t).toISOString().slice(0, 10) === date ? t : null;
}

/** The `<input type="date">` value of a moment's day in the browser's zone. */
export function dateInput(at: Date = new Date()): string {
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}`;
}

/** The first day of that moment's month, as a date input value. */
export function monthStartInput(at: Date = new Date()): string {
  return `${dateInput(at).slice(0, 8)}01`;
}

/** `2026-11-30` + 1 → `2026-12-01`. */
export function addDays(date: string, days: number): string {
  const t = dayValue(date);
  if (t === null) return date;
  return new Date(t + days * 86_400_000).toISOString().slice(0, 10);
}

/** How many days from `from` to `to`, both counted (`null` when either is not a day; ≤ 0 when `to` is before `from`). */
export function daysInclusive(from: string, to: string): number | null {
  const a = dayValue(from);
  const b = dayValue(to);
  if (a === null || b === null) return null;
  return Math.round((b - a) / 86_400_000) + 1;
}

/** Every day from `from` to `to`, both included. */
export function dayRange(from: string, to: string): string[] {
  const n = daysInclusive(from, to);
  if (n === null || n <= 0) return [];
  return Array.from({ length: n }, (_, i) => addDays(from, i));
}

/** The browser's zone, for inputs: `Europe/Berlin (UTC+01:00)`. */
export function browserZone(at: Date = new Date()): string {
  const name = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  return `${name} (${zoneLabel(offsetOf(at))})`;
}

function offsetOf(at: Date): string {
  const minutes = -at.getTimezoneOffset();
  if (minutes === 0) return "Z";
  const sign = minutes > 0 ? "+" : "-";
  const abs = Math.abs(minutes);
  return `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
}

/** An `<input type="datetime-local">` value (browser's zone) → RFC 3339 with its offset. */
export function localInputToRfc3339(value: string): string | null {
  const m = value.match(/^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/);
  if (!m) return null;
  const at = new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0));
  if (Number.isNaN(at.getTime())) return null;
  const offset = offsetOf(at);
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? "00"}${offset === "Z" ? "Z" : offset}`;
}

/** An RFC 3339 instant → the `<input type="datetime-local">` value in the browser's zone. */
export function rfc3339ToLocalInput(rfc3339: string): string {
  const at = new Date(rfc3339);
  if (Number.isNaN(at.getTime())) return "";
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}T${pad(at.getHours())}:${pad(at.getMinutes())}`;
}

/**
 * A limit typed by a person: `1000000`, `1,000,000`, `1 000 000`, `1.5M`, `250k`. Empty =
 * unlimited (`null`). `undefined` when it is not a non-negative whole number.
 */
export function parseLimit(text: string): number | null | undefined {
  const clean = text.trim().replace(/[,_\s]/g, "").toLowerCase();
  if (clean === "") return null;
  const m = clean.match(/^(\d+(?:\.\d+)?)([kmb])?$/);
  if (!m) return undefined;
  const factor = m[2] === "k" ? 1e3 : m[2] === "m" ? 1e6 : m[2] === "b" ? 1e9 : 1;
  const value = Number(m[1]) * factor;
  if (!Number.isSafeInteger(Math.round(value)) || Math.abs(value - Math.round(value)) > 1e-9) return undefined;
  return Math.round(value);
}

/** Why typed seconds are refused. */
export type SecondsProblem = "negative" | "decimals" | "not-a-number" | "too-large";

/**
 * Seconds typed by a person: `3600`, `1,800`, `1 800`, `1.5`, `0.125`. Empty = unlimited
 * (`null`). At most 3 decimals, as the API keeps milliseconds. Commas must group thousands: `1,5`
 * is refused rather than read as 15 (a decimal comma would be a tenfold mistake). No `k`/`M`
 * suffix: next to time, `M` reads as minutes.
 */
export function parseSeconds(text: string): { value: number | null } | { problem: SecondsProblem } {
  const clean = text.trim().replace(/[_\s]/g, "");
  if (clean === "") return { value: null };
  const m = clean.match(/^(-)?(\d{1,3}(?:,\d{3})+|\d*)(?:\.(\d*))?$/);
  if (!m || (m[2] === "" && !m[3])) return { problem: "not-a-number" };
  if (m[1]) return { problem: "negative" };
  const fraction = (m[3] ?? "").replace(/0+$/, "");
  if (fraction.length > 3) return { problem: "decimals" };
  const value = Number(`${m[2].replace(/,/g, "") || "0"}.${fraction || "0"}`);
  // Beyond this the milliseconds are no longer exact (and JSON would turn Infinity into null = unlimited).
  if (!(value * 1000 <= Number.MAX_SAFE_INTEGER)) return { problem: "too-large" };
  return { value };
}
