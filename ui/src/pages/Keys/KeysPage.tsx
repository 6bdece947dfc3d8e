/** The list of keys with today's totals, a filter, and the create dialog. */
import { useState } from "react";
import { useClient, useResource } from "../../api/context";
import type { Key } from "../../api/types";
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
  const [creating, setCreating] = useState(false);
  const [filter, setFilter] = useState("");

  const replace = (key: Key) => keys.setData((keys.data ?? []).map((k) => (k.id === key.id ? key : k)));
  const remove = (id: number) => keys.setData((keys.data ?? []).filter((k) => k.id !== id));
  const add = (key: Key) => keys.setData([...(keys.data ?? []), key]);

  const needle = filter.trim().toLowerCase();
  const shown = keys.data?.filter((k) => !needle || k.name.toLowerCase().includes(needle) || k.key_prefix.toLowerCase().includes(needle));

  return (
    <>
      <PageHeader
        title="API keys"
        description="Each key has its own daily and monthly limits on tokens and requests."
        actions={
          <>
            <button type="button" className="btn btn-secondary" onClick={() => void keys.reload()} disabled={keys.loading}>
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
            {keys.data && keys.data.length > 4 && (
              <div className="table-toolbar">
                <input
                  type="search"
                  className="search"
                  placeholder="Filter by name or prefix"
                  aria-label="Filter keys"
                  value={filter}
                  onChange={(e) => setFilter(e.target.value)}
                />
                <span className="muted small">
                  {shown?.length} of {keys.data.length}
                </span>
              </div>
            )}
            <KeyTable keys={shown} loading={keys.loading} onChanged={replace} onDeleted={remove} />
            {shown && shown.length === 0 && keys.data && keys.data.length > 0 && <p className="table-empty">No key matches “{filter}”.</p>}
          </section>
        ) : null
      )}

      {creating && <CreateKeyDialog onClose={() => setCreating(false)} onCreated={add} />}
    </>
  );
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
