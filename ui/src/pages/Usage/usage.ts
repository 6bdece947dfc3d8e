/** The usage report as the page shows it: the range check, totals, and the chart's stacks. */
import type { UsageRow } from "../../api/types";
import { daysInclusive } from "../../format";

export type StackBy = "key" | "model" | "team";
export type Metric = "tokens" | "requests" | "gpu";

/** The API answers at most this many days at once. */
export const MAX_DAYS = 366;

/** Why the range cannot be asked for, or `null`. */
export function rangeProblem(from: string, to: string): string | null {
  const days = daysInclusive(from, to);
  if (days === null) return "Pick a first and a last day.";
  if (days <= 0) return "The last day is before the first day.";
  if (days > MAX_DAYS) return `At most ${MAX_DAYS} days at a time (this range has ${days}).`;
  return null;
}

export interface Totals {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  /** GPU time in seconds (host time × the host's gpu_weight). */
  gpu_seconds: number;
}

export function totalsOf(rows: readonly UsageRow[]): Totals {
  return rows.reduce(
    (t, r) => ({
      requests: t.requests + r.requests,
      prompt_tokens: t.prompt_tokens + r.prompt_tokens,
      completion_tokens: t.completion_tokens + r.completion_tokens,
      gpu_seconds: t.gpu_seconds + r.gpu_seconds,
    }),
    { requests: 0, prompt_tokens: 0, completion_tokens: 0, gpu_seconds: 0 },
  );
}

export function valueOf(row: Pick<UsageRow, "requests" | "prompt_tokens" | "completion_tokens" | "gpu_seconds">, metric: Metric): number {
  if (metric === "gpu") return row.gpu_seconds;
  return metric === "tokens" ? row.prompt_tokens + row.completion_tokens : row.requests;
}

/** What the chart counts, in its title and tooltips. */
export const METRIC_UNIT: Record<Metric, string> = { tokens: "tokens", requests: "requests", gpu: "GPU seconds" };
export const METRIC_TITLE: Record<Metric, string> = { tokens: "Tokens", requests: "Requests", gpu: "GPU seconds" };

/** The chart has this many colours; more keys or models than that share the last, "others". */
export const MAX_SERIES = 8;

export interface Series {
  id: string;
  label: string;
  total: number;
  /** 0…MAX_SERIES-1, the colour (`series-N`). */
  colour: number;
  /** For a key: its id (the legend links to it). */
  keyId?: number;
  /** For a team: its id (the legend links to it); none for the keys without a team. */
  teamId?: number;
}

export interface StackedDay {
  date: string;
  /** One value per series, in the series' order (largest first, drawn at the bottom). */
  values: number[];
  total: number;
}

/** Rows grouped by `by` and day → one stack per day of `dates`, the largest series at the bottom. */
export function stackRows(rows: readonly UsageRow[], dates: readonly string[], by: StackBy, metric: Metric): { series: Series[]; days: StackedDay[] } {
  const found = new Map<string, { label: string; total: number; keyId?: number; teamId?: number }>();
  const idOf = (r: UsageRow) =>
    by === "key" ? `key:${r.key_id ?? ""}` : by === "team" ? `team:${r.team_id ?? ""}` : `model:${r.model ?? ""}`;
  const seriesOf = (r: UsageRow) => {
    if (by === "key") return { label: r.key_name ?? `key ${r.key_id ?? "?"}`, total: 0, keyId: r.key_id ?? undefined };
    if (by === "team") {
      if (r.team_id == null) return { label: "No team", total: 0 };
      return { label: r.team_name ?? `team ${r.team_id}`, total: 0, teamId: r.team_id };
    }
    return { label: r.model ?? "no model", total: 0 };
  };
  for (const r of rows) {
    const id = idOf(r);
    const entry = found.get(id) ?? seriesOf(r);
    entry.total += valueOf(r, metric);
    found.set(id, entry);
  }
  const ranked = [...found.entries()]
    .filter(([, s]) => s.total > 0)
    .sort(([, a], [, b]) => b.total - a.total || a.label.localeCompare(b.label));
  const named = ranked.length > MAX_SERIES ? ranked.slice(0, MAX_SERIES - 1) : ranked;
  const series: Series[] = named.map(([id, s], i) => ({ id, label: s.label, total: s.total, colour: i, keyId: s.keyId, teamId: s.teamId }));
  const index = new Map(series.map((s, i) => [s.id, i]));
  if (ranked.length > named.length) {
    const rest = ranked.slice(named.length);
    series.push({
      id: "others",
      label: `${rest.length} others`,
      total: rest.reduce((sum, [, s]) => sum + s.total, 0),
      colour: MAX_SERIES - 1,
    });
  }
  const byDate = new Map(dates.map((date) => [date, new Array<number>(series.length).fill(0)]));
  for (const r of rows) {
    const values = r.date ? byDate.get(r.date) : undefined;
    if (!values) continue;
    const i = index.get(idOf(r)) ?? (series.length > named.length ? series.length - 1 : undefined);
    if (i !== undefined) values[i] += valueOf(r, metric);
  }
  const days = dates.map((date) => {
    const values = byDate.get(date) ?? [];
    return { date, values, total: values.reduce((a, b) => a + b, 0) };
  });
  return { series, days };
}
