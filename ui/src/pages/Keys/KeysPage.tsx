/** The list of keys with today's totals, filters (name or prefix, team), and the create dialog. */
import { useState } from "react";
import { useClient, useResource } from "../../api/context";
import type { Key, Team } from "../../api/types";
import { Icon } from "../../components/Icon";
import { PageHeader } from "../../components/PageHeader";
import { EmptyState, ErrorState } from "../../components/States";
import { formatCompact, formatNumber } from "../../format";
import { useTitle } from "../../router";
import { CreateKeyDialog } from "./CreateKeyDialog";
import { KeyTable } from "./KeyTable";
import { keyState } from "../../components/KeyStatus";

export function KeysPage() {
  useTitle("API keys");
  const client = useClient();
  const keys = useResource(() => client.listKeys(), [client]);
  // For the team column and filter; a gateway whose API has no teams just shows neither.
  const teams = useResource<Team[]>(() => client.listTeams(), [client]);
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState("");
  /** `""` = every key, `"none"` = keys without a team, else a team's id. */
  const [teamFilter, setTeamFilter] = useState("");

  const replace = (key: Key) => keys.setData((keys.data ?? []).map((k) => (k.id === key.id ? key : k)));
  const remove = (id: number) => keys.setData((keys.data ?? []).filter((k) => k.id !== id));
  const add = (key: Key) => keys.setData([...(keys.data ?? []), key]);

  const needle = filter.trim().toLowerCase();
  const inTeam = (k: Key) => teamFilter === "" || (teamFilter === "none" ? !k.team : String(k.team?.id) === teamFilter);
  const shown = keys.data?.filter(
    (k) => inTeam(k) && (!needle || k.name.toLowerCase().includes(needle) || k.key_prefix.toLowerCase().includes(needle)),
  );
  const teamList = teams.data ?? [];
  const hasTeams = teamList.length > 0 || (keys.data?.some((k) => k.team) ?? false);
  const filtered = needle !== "" || teamFilter !== "";
  const reload = () => Promise.all([keys.reload(), teams.reload()]);

  return (
    <>
      <PageHeader
        title="API keys"
        description="Each key has its own daily and monthly limits on tokens and requests; keys in a team share the team's limits too."
        actions={
          <>
            <button type="button" className="btn btn-secondary" onClick={() => void reload()} disabled={keys.loading}>
              <Icon name="refresh" className={keys.loading && keys.data ? "spin" : undefined} /> Refresh
            </button>
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              <Icon name="plus" /> Create key
            </button>
          </>
        }
      />

      {keys.error !== undefined && <ErrorState error={keys.error} what="the keys" onRetry={() => void keys.reload()} />}

      {keys.data && keys.data.length > 0 && <Totals keys={keys.data} />}

      {keys.data && keys.data.length === 0 ? (
        <EmptyState
          icon="key"
          title="No API keys yet"
          action={
            <button type="button" className="btn btn-primary" onClick={() => setCreating(true)}>
              <Icon name="plus" /> Create the first key
            </button>
          }
        >
          Create a key for each person or program that calls Ollama through this gateway, with its own limits.
        </EmptyState>
      ) : (
        keys.error === undefined || keys.data ? (
          <section className="card card-flush">
            {keys.data && (keys.data.length > 4 || hasTeams) && (
              <div className="table-toolbar">
                {keys.data.length > 4 && (
                  <input
                    type="search"
                    className="search"
                    placeholder="Filter by name or prefix"
                    aria-label="Filter keys"
                    value={filter}
                    onChange={(e) => setFilter(e.target.value)}
                  />
                )}
                {hasTeams && (
                  <select className="team-filter" aria-label="Filter by team" value={teamFilter} onChange={(e) => setTeamFilter(e.target.value)}>
                    <option value="">All keys</option>
                    <option value="none">No team</option>
                    {teamOptions(teamList, keys.data).map((t) => (
                      <option key={t.id} value={String(t.id)}>
                        {t.name}
                      </option>
                    ))}
                  </select>
                )}
                {filtered && (
                  <span className="muted small">
                    {shown?.length} of {keys.data.length}
                  </span>
                )}
              </div>
            )}
            <KeyTable keys={shown} loading={keys.loading} onChanged={replace} onDeleted={remove} showTeam={hasTeams} />
            {shown && shown.length === 0 && keys.data && keys.data.length > 0 && (
              <p className="table-empty">
                {needle
                  ? `No key matches “${filter}”${teamFilter === "none" ? " without a team" : teamFilter ? " in this team" : ""}.`
                  : teamFilter === "none"
                    ? "Every key is in a team."
                    : "No key in this team."}
              </p>
            )}
          </section>
        ) : null
      )}

      {creating && (
        <CreateKeyDialog
          onClose={() => setCreating(false)}
          onCreated={(key) => {
            add(key);
            // The team's key count moved.
            if (key.team) void teams.reload();
          }}
        />
      )}
    </>
  );
}

/** The teams to filter by: every team listed, and any a key names that the list lacks (sorted by name). */
export function teamOptions(teams: readonly Team[], keys: readonly Key[]): { id: number; name: string }[] {
  const all = new Map<number, string>(teams.map((t) => [t.id, t.name]));
  for (const k of keys) if (k.team && !all.has(k.team.id)) all.set(k.team.id, k.team.name);
  return [...all.entries()].map(([id, name]) => ({ id, name })).sort((a, b) => a.name.localeCompare(b.name));
}

function Totals({ keys }: { keys: Key[] }) {
  const active = keys.filter((k) => keyState(k) === "active").length;
  const sum = (f: (k: Key) => number) => keys.reduce((total, k) => total + f(k), 0);
  const stats = [
    { label: "Active keys", value: `${active}`, sub: `of ${formatNumber(keys.length)}` },
    { label: "Requests today", value: formatCompact(sum((k) => k.usage.day.requests)), sub: `${formatCompact(sum((k) => k.usage.month.requests))} this month` },
    { label: "Tokens today", value: formatCompact(sum((k) => k.usage.day.tokens)), sub: `${formatCompact(sum((k) => k.usage.month.tokens))} this month` },
  ];
  return (
    <div className="stats">
      {stats.map((s) => (
        <div className="stat" key={s.label}>
          <div className="stat-label">{s.label}</div>
          <div className="stat-value">{s.value}</div>
          <div className="stat-sub">{s.sub}</div>
        </div>
      ))}
    </div>
  );
}
