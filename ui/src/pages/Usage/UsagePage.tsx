/**
 * Usage over a range of days, of every key or of one team's: totals, a chart per day stacked by
 * key, model or team, the rows of the report grouped by any of key, model, day and team, and the
 * same rows as a CSV file.
 */
import { useState } from "react";
import { useClient, useResource } from "../../api/context";
import { DEFAULT_USAGE_GROUPS, type Team, type UsageDimension, type UsageQuery } from "../../api/types";
import { describeError } from "../../api/client";
import { Icon } from "../../components/Icon";
import { PageHeader } from "../../components/PageHeader";
import { EmptyState, ErrorState, Spinner } from "../../components/States";
import { useToast } from "../../components/Toast";
import { saveBlob } from "../../download";
import { dateInput, dayRange, formatCompact, formatDay, formatNumber, formatSeconds, monthStartInput } from "../../format";
import { useTitle } from "../../router";
import { StackedUsageChart } from "./StackedUsageChart";
import { UsageFilters } from "./UsageFilters";
import { UsageTable } from "./UsageTable";
import { METRIC_TITLE, rangeProblem, totalsOf, type Metric, type StackBy } from "./usage";

export function UsagePage() {
  useTitle("Usage");
  const client = useClient();
  const notify = useToast();
  const [from, setFrom] = useState(() => monthStartInput());
  const [to, setTo] = useState(() => dateInput());
  const [groups, setGroups] = useState<readonly UsageDimension[]>(DEFAULT_USAGE_GROUPS);
  /** Only this team's keys; `null` = every key. */
  const [teamId, setTeamId] = useState<number | null>(null);
  const [stackBy, setStackBy] = useState<StackBy>("key");
  const [metric, setMetric] = useState<Metric>("tokens");
  const [downloading, setDownloading] = useState(false);

  // For the team filter and grouping; an API without teams (or none made yet) shows neither.
  const teams = useResource<Team[]>(() => client.listTeams(), [client]);
  const teamList = teams.data ?? [];
  const withTeams = teamList.length > 0;

  const problem = rangeProblem(from, to);
  const query: UsageQuery = { from, to, group_by: groups, team_id: teamId };
  const groupKey = groups.join(",");
  // The rows and the chart's rows (by the stacked dimension and day) are separate reports, so
  // the chart does not depend on what the table is grouped by.
  const report = useResource(
    async () => (problem ? null : { groups, rows: await client.usage(query) }),
    [client, from, to, groupKey, teamId, problem],
  );
  const chart = useResource(
    async () => (problem ? null : { by: stackBy, from, to, rows: await client.usage({ from, to, group_by: [stackBy, "day"], team_id: teamId }) }),
    [client, from, to, stackBy, teamId, problem],
  );
  const reload = () => Promise.all([report.reload(), chart.reload()]);

  const download = async () => {
    setDownloading(true);
    try {
      const file = await client.usageCsv(query);
      saveBlob(file.blob, file.filename);
    } catch (e) {
      notify(`The CSV could not be downloaded: ${describeError(e)}`, "error");
    } finally {
      setDownloading(false);
    }
  };

  const rows = report.data?.rows;
  const teamName = teamId === null ? null : (teamList.find((t) => t.id === teamId)?.name ?? `team ${teamId}`);
  const loadFailed = report.error !== undefined && !report.data;
  const empty = rows !== undefined && rows.length === 0;

  return (
    <>
      <PageHeader
        title="Usage"
        description="Requests and tokens of every key, per model and per day of the server's time zone."
        actions={
          <>
            <button type="button" className="btn btn-secondary" onClick={() => void reload()} disabled={report.loading && !report.data}>
              <Icon name="refresh" className={report.loading && report.data ? "spin" : undefined} /> Refresh
            </button>
            <button type="button" className="btn btn-primary" onClick={() => void download()} disabled={downloading || problem !== null}>
              <Icon name="download" /> {downloading ? "Downloading…" : "Download CSV"}
            </button>
          </>
        }
      />

      <UsageFilters
        from={from}
        to={to}
        groups={groups}
        teams={teamList}
        teamId={teamId}
        problem={problem}
        onFrom={setFrom}
        onTo={setTo}
        onGroups={setGroups}
        onTeam={setTeamId}
      />

      {problem === null && loadFailed && <ErrorState error={report.error} what="the usage" onRetry={() => void reload()} />}

      {problem === null && empty && (
        <EmptyState icon="chart" title="No usage in this range">
          No request was counted from {formatDay(from)} to {formatDay(to)}
          {teamName === null ? "" : ` for the keys of ${teamName}`}. Pick other days, or check that the keys are in use.
        </EmptyState>
      )}

      {problem === null && !loadFailed && !empty && (
        <>
          {rows && <UsageStats rows={rows} days={dayRange(from, to).length} />}

          <section className="card usage-chart-card" aria-labelledby="usage-chart-title">
            <div className="card-head">
              <h2 id="usage-chart-title">{METRIC_TITLE[metric]} per day</h2>
              <div className="chart-controls">
                <Segmented
                  label="Show"
                  name="usage-metric"
                  value={metric}
                  options={[
                    { value: "tokens", label: "Tokens" },
                    { value: "requests", label: "Requests" },
                    { value: "gpu", label: "GPU time" },
                  ]}
                  onChange={setMetric}
                />
                <Segmented
                  label="Stack by"
                  name="usage-stack"
                  value={stackBy}
                  options={[
                    { value: "key", label: "Key" },
                    { value: "model", label: "Model" },
                    ...(withTeams || stackBy === "team" ? [{ value: "team" as const, label: "Team" }] : []),
                  ]}
                  onChange={setStackBy}
                />
              </div>
            </div>
            {chart.error !== undefined && !chart.data && report.error === undefined && (
              <ErrorState error={chart.error} what="the chart" onRetry={() => void chart.reload()} />
            )}
            {!chart.data && chart.loading && <Spinner label="Loading the chart…" />}
            {chart.data && <StackedUsageChart dates={dayRange(chart.data.from, chart.data.to)} rows={chart.data.rows} by={chart.data.by} metric={metric} />}
          </section>

          <section className="card card-flush usage-rows" aria-labelledby="usage-rows-title">
            <div className="card-head card-head-padded">
              <h2 id="usage-rows-title">Rows</h2>
              {rows && (
                <span className="muted small">
                  {formatNumber(rows.length)} {rows.length === 1 ? "row" : "rows"}, sorted by day, key and model
                </span>
              )}
            </div>
            <UsageTable groups={report.data?.groups ?? groups} rows={rows} loading={report.loading} />
          </section>
        </>
      )}
    </>
  );
}

function UsageStats({ rows, days }: { rows: Parameters<typeof totalsOf>[0]; days: number }) {
  const totals = totalsOf(rows);
  const count = (value: number) => ({ shown: formatCompact(value), exact: formatNumber(value) });
  const stats = [
    { label: "Requests", ...count(totals.requests), sub: `in ${formatNumber(days)} ${days === 1 ? "day" : "days"}` },
    { label: "Prompt tokens", ...count(totals.prompt_tokens), sub: "sent to the models" },
    { label: "Completion tokens", ...count(totals.completion_tokens), sub: `${formatCompact(totals.prompt_tokens + totals.completion_tokens)} tokens in all` },
    {
      label: "GPU time",
      shown: `${formatSeconds(totals.gpu_seconds)} s`,
      exact: `${totals.gpu_seconds.toFixed(3)} s`,
      sub: "host time × the host's gpu_weight",
    },
  ];
  return (
    <div className="stats">
      {stats.map((s) => (
        <section className="stat" key={s.label} aria-label={s.label}>
          <div className="stat-label">{s.label}</div>
          <div className="stat-value" title={s.exact}>
            {s.shown}
          </div>
          <div className="stat-sub">{s.sub}</div>
        </section>
      ))}
    </div>
  );
}

export function Segmented<T extends string>({
  label,
  name,
  value,
  options,
  onChange,
}: {
  label: string;
  name: string;
  value: T;
  options: { value: T; label: string }[];
  onChange: (value: T) => void;
}) {
  return (
    <div className="segmented-field" role="radiogroup" aria-label={label}>
      <span className="field-label-small">{label}</span>
      <div className="segmented">
        {options.map((o) => (
          <label key={o.value}>
            <input type="radio" name={name} value={o.value} checked={value === o.value} onChange={() => onChange(o.value)} />
            <span>{o.label}</span>
          </label>
        ))}
      </div>
    </div>
  );
}
