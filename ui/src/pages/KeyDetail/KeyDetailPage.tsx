/** One key: its settings and team, the current budget of each limit, its pacing, what its
 * requests in flight hold reserved, 30 days of usage, and its history (the audit trail of the key). */
import { useState } from "react";
import { ApiError } from "../../api/client";
import { useClient, useResource } from "../../api/context";
import type { AuditEntry, Key } from "../../api/types";
import { Icon } from "../../components/Icon";
import { KeyStatus } from "../../components/KeyStatus";
import { EmptyState, ErrorState, Spinner } from "../../components/States";
import { Time } from "../../components/Time";
import { formatNumber } from "../../format";
import { Link, navigate, useTitle } from "../../router";
import { AuditTable } from "../Audit/AuditTable";
import { useAudit } from "../Audit/useAudit";
import { KeyActions } from "../Keys/KeyActions";
import { Models } from "../Keys/KeyTable";
import { BudgetCards } from "./BudgetCards";
import { PacingCards } from "./PacingCards";
import { RotateKeyDialog } from "./RotateKeyDialog";
import { UsageChart } from "./UsageChart";

export function KeyDetailPage({ id }: { id: number }) {
  const client = useClient();
  const key = useResource(() => client.getKey(id), [client, id]);
  const usage = useResource(() => client.keyUsage(id, 30), [client, id]);
  const history = useAudit(client, { keyId: id, pageSize: 20 });
  const [rotating, setRotating] = useState(false);
  // The rotate answer's `old_secret_valid_until`, once the key is rotated here (else the history says).
  const [rotatedUntil, setRotatedUntil] = useState<string | null | undefined>(undefined);
  useTitle(key.data ? key.data.name : "API key");

  const back = (
    <Link to="/keys" className="back-link">
      <Icon name="back" /> API keys
    </Link>
  );

  if (key.error instanceof ApiError && key.error.kind === "not_found") {
    return (
      <>
        {back}
        <EmptyState icon="key" title={`There is no key with id ${id}`} action={<Link to="/keys" className="btn btn-primary">Back to the keys</Link>}>
          It may have been deleted.
        </EmptyState>
      </>
    );
  }
  if (key.error !== undefined && !key.data) {
    return (
      <>
        {back}
        <ErrorState error={key.error} what="this key" onRetry={() => void key.reload()} />
      </>
    );
  }
  if (!key.data) return <Spinner label="Loading the key…" />;

  const k: Key = key.data;
  const changed = (updated: Key) => {
    key.setData(updated);
    void usage.reload();
    void history.reload();
  };
  const rotated = (updated: Key, until: string | null) => {
    setRotatedUntil(until);
    changed(updated);
  };
  const oldSecret = rotatedUntil !== undefined ? rotatedUntil : oldSecretUntil(history.entries);

  return (
    <>
      {back}
      <div className="page-header">
        <div>
          <h1 className="title-with-badge">
            {k.name} <KeyStatus keyData={k} />
          </h1>
          <dl className="meta">
            <div>
              <dt>Prefix</dt>
              <dd className="mono" data-testid="key-prefix">
                {k.key_prefix}…
              </dd>
            </div>
            <div>
              <dt title="A team's limits count the requests of all its keys together">Team</dt>
              <dd data-testid="key-team">
                {k.team ? (
                  <Link to={`/teams/${k.team.id}`} className="key-name">
                    {k.team.name}
                  </Link>
                ) : (
                  <span className="muted">None</span>
                )}
              </dd>
            </div>
            <div>
              <dt>Created</dt>
              <dd>
                <Time value={k.created_at} />
              </dd>
            </div>
            <div>
              <dt>Expires</dt>
              <dd>{k.expires_at ? <Time value={k.expires_at} relative /> : "Never"}</dd>
            </div>
            <div>
              <dt>Models</dt>
              <dd>
                <Models models={k.allowed_models ?? null} max={4} />
              </dd>
            </div>
            <div>
              <dt title="Ollama's web search tools run on the host's ollama.com account">Web search</dt>
              <dd data-testid="web-search">{k.allow_web_search ? "Allowed" : "Not allowed"}</dd>
            </div>
            <div>
              <dt title="Requests running now on this instance; their reservations count as used until each answer ends">In flight</dt>
              <dd data-testid="in-flight">{inFlight(k)}</dd>
            </div>
          </dl>
          {oldSecret && (
            <p className="notice old-secret" data-testid="old-secret">
              <Icon name="info" />
              <span>
                Old secret works until <Time value={oldSecret} relative />
              </span>
            </p>
          )}
        </div>
        <div className="page-actions">
          <button type="button" className="btn btn-secondary" onClick={() => setRotating(true)}>
            <Icon name="rotate" /> Rotate secret
          </button>
          <KeyActions keyData={k} onChanged={changed} onDeleted={() => navigate("/keys")} variant="buttons" />
        </div>
      </div>

      <h2 className="section-title">Current budget</h2>
      <BudgetCards budget={k} />

      <h2 className="section-title">Pacing</h2>
      <PacingCards budget={k} />

      <section className="card">
        <div className="card-head">
          <h2>Last 30 days</h2>
          <button type="button" className="btn btn-ghost btn-small" onClick={() => void Promise.all([key.reload(), usage.reload()])}>
            <Icon name="refresh" /> Refresh
          </button>
        </div>
        {usage.error !== undefined && !usage.data && <ErrorState error={usage.error} what="the usage" onRetry={() => void usage.reload()} />}
        {!usage.data && usage.loading && <Spinner label="Loading the usage…" />}
        {usage.data && <UsageChart days={usage.data} />}
      </section>

      <section className="card card-flush key-history" aria-labelledby="key-history-title">
        <div className="card-head card-head-padded">
          <h2 id="key-history-title">History</h2>
          <span className="muted small">Changes to this key, newest first</span>
        </div>
        {history.error !== undefined && !history.entries ? (
          <div className="card-body">
            <ErrorState error={history.error} what="the history" onRetry={() => void history.reload()} />
          </div>
        ) : history.entries && history.entries.length === 0 ? (
          <p className="table-empty">No change recorded for this key yet.</p>
        ) : (
          <AuditTable feed={history} showKey={false} caption={`History of ${k.name}, newest first`} />
        )}
      </section>

      {rotating && <RotateKeyDialog keyData={k} onClose={() => setRotating(false)} onRotated={rotated} />}
    </>
  );
}

/**
 * Until when the old secret still works, from the key's history (newest first): the newest
 * `key.rotated` entry's `old_secret_valid_until` if still ahead, else `null` (a later rotation
 * replaces an earlier one's grace period).
 */
export function oldSecretUntil(history: AuditEntry[] | undefined, now = Date.now()): string | null {
  const until = history?.find((e) => e.action === "key.rotated")?.after?.old_secret_valid_until;
  return typeof until === "string" && Date.parse(until) > now ? until : null;
}

/** "None", or "2 requests · 512 tokens reserved" (of a key, or of a team's keys). */
export function inFlight(k: Pick<Key, "in_flight">): string {
  const { requests, reserved_tokens } = k.in_flight;
  if (requests === 0) return "None";
  const what = requests === 1 ? "request" : "requests";
  return `${formatNumber(requests)} ${what} · ${formatNumber(reserved_tokens)} tokens reserved`;
}
