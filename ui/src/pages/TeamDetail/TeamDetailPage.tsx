/**
 * One team: its description, the current budget of each shared limit (the usage of all its keys),
 * its pacing, its keys (with a way to create one in the team), and 30 days of its usage stacked
 * by key. Edit and delete as on the teams list.
 */
import { useState } from "react";
import { ApiError } from "../../api/client";
import { useClient, useResource } from "../../api/context";
import type { Key, Team } from "../../api/types";
import { Icon } from "../../components/Icon";
import { EmptyState, ErrorState, Spinner } from "../../components/States";
import { Time } from "../../components/Time";
import { addDays, dateInput, dayRange, formatNumber } from "../../format";
import { Link, navigate, useTitle } from "../../router";
import { BudgetCards } from "../KeyDetail/BudgetCards";
import { inFlight } from "../KeyDetail/KeyDetailPage";
import { PacingCards } from "../KeyDetail/PacingCards";
import { CreateKeyDialog } from "../Keys/CreateKeyDialog";
import { KeyTable, Models } from "../Keys/KeyTable";
import { StackedUsageChart } from "../Usage/StackedUsageChart";
import { Segmented } from "../Usage/UsagePage";
import type { Metric } from "../Usage/usage";
import { TeamActions } from "../Teams/TeamActions";

/** Days in the team's usage chart, today included. */
const CHART_DAYS = 30;

export function TeamDetailPage({ id }: { id: number }) {
  const client = useClient();
  const team = useResource(() => client.getTeam(id), [client, id]);
  const keys = useResource(() => client.listKeys(), [client]);
  const [to] = useState(() => dateInput());
  const from = addDays(to, -(CHART_DAYS - 1));
  const usage = useResource(() => client.usage({ from, to, group_by: ["key", "day"], team_id: id }), [client, id, from, to]);
  const [metric, setMetric] = useState<Metric>("tokens");
  const [creating, setCreating] = useState(false);
  useTitle(team.data ? team.data.name : "Team");

  const back = (
    <Link to="/teams" className="back-link">
      <Icon name="back" /> Teams
    </Link>
  );

  if (team.error instanceof ApiError && team.error.kind === "not_found") {
    return (
      <>
        {back}
        <EmptyState icon="team" title={`There is no team with id ${id}`} action={<Link to="/teams" className="btn btn-primary">Back to the teams</Link>}>
          It may have been deleted.
        </EmptyState>
      </>
    );
  }
  if (team.error !== undefined && !team.data) {
    return (
      <>
        {back}
        <ErrorState error={team.error} what="this team" onRetry={() => void team.reload()} />
      </>
    );
  }
  if (!team.data) return <Spinner label="Loading the team…" />;

  const t: Team = team.data;
  const members = keys.data?.filter((k) => k.team?.id === t.id);
  // A key that changed (or left the team, or was deleted) changes the team's count and usage.
  const keyChanged = (key: Key) => {
    keys.setData((keys.data ?? []).map((k) => (k.id === key.id ? key : k)));
    void team.reload();
  };
  const keyDeleted = (keyId: number) => {
    keys.setData((keys.data ?? []).filter((k) => k.id !== keyId));
    void Promise.all([team.reload(), usage.reload()]);
  };
  const keyCreated = (key: Key) => {
    keys.setData([...(keys.data ?? []), key]);
    void team.reload();
  };
  const refresh = () => Promise.all([team.reload(), keys.reload(), usage.reload()]);

  return (
    <>
      {back}
      <div className="page-header">
        <div>
          <h1>{t.name}</h1>
          {t.description && <p className="page-description team-description-full">{t.description}</p>}
          <dl className="meta">
            <div>
              <dt>Keys</dt>
              <dd data-testid="team-key-count">{formatNumber(t.key_count)}</dd>
            </div>
            <div>
              <dt>Created</dt>
              <dd>
                <Time value={t.created_at} />
              </dd>
            </div>
            <div>
              <dt>Models</dt>
              <dd>
                <Models models={t.allowed_models ?? null} max={4} />
              </dd>
            </div>
            <div>
              <dt title="Requests of the team's keys running now on this instance; their reservations count as used until each answer ends">
                In flight
              </dt>
              <dd data-testid="in-flight">{inFlight(t)}</dd>
            </div>
          </dl>
        </div>
        <div className="page-actions">
          <button type="button" className="btn btn-secondary" onClick={() => void refresh()} disabled={team.loading}>
            <Icon name="refresh" className={team.loading ? "spin" : undefined} /> Refresh
          </button>
          <TeamActions team={t} onChanged={(saved) => team.setData(saved)} onDeleted={() => navigate("/teams")} variant="buttons" />
        </div>
      </div>

      <h2 className="section-title">Current budget</h2>
      <p className="muted section-intro">All the team's keys together; each key's own limits apply as well.</p>
      <BudgetCards budget={t} />

      <h2 className="section-title">Pacing</h2>
      <PacingCards budget={t} who="team" />

      <section className="card card-flush team-members" aria-labelledby="team-members-title">
        <div className="card-head card-head-padded">
          <div>
            <h2 id="team-members-title">Keys</h2>
            <span className="muted small">The keys that share this team's budget</span>
          </div>
          <button type="button" className="btn btn-secondary btn-small" onClick={() => setCreating(true)}>
            <Icon name="plus" /> Create a key in this team
          </button>
        </div>
        {keys.error !== undefined && !keys.data ? (
          <div className="card-body">
            <ErrorState error={keys.error} what="the keys" onRetry={() => void keys.reload()} />
          </div>
        ) : members && members.length === 0 ? (
          <p className="table-empty">No key belongs to this team yet. Create one here, or pick the team in a key's Edit dialog.</p>
        ) : (
          <KeyTable
            keys={members}
            loading={keys.loading}
            onChanged={keyChanged}
            onDeleted={keyDeleted}
            caption={`Keys of ${t.name}, with their own limits and current usage`}
          />
        )}
      </section>

      <section className="card usage-chart-card" aria-labelledby="team-usage-title">
        <div className="card-head">
          <div>
            <h2 id="team-usage-title">Last {CHART_DAYS} days</h2>
            <span className="muted small">The team's keys, stacked</span>
          </div>
          <div className="chart-controls">
            <Segmented
              label="Show"
              name="team-usage-metric"
              value={metric}
              options={[
                { value: "tokens", label: "Tokens" },
                { value: "requests", label: "Requests" },
                { value: "gpu", label: "GPU time" },
              ]}
              onChange={setMetric}
            />
          </div>
        </div>
        {usage.error !== undefined && !usage.data && <ErrorState error={usage.error} what="the usage" onRetry={() => void usage.reload()} />}
        {!usage.data && usage.loading && <Spinner label="Loading the usage…" />}
        {usage.data && <StackedUsageChart dates={dayRange(from, to)} rows={usage.data} by="key" metric={metric} />}
      </section>

      {creating && <CreateKeyDialog teamId={t.id} onClose={() => setCreating(false)} onCreated={keyCreated} />}
    </>
  );
}
