/**
 * The Ollama hosts behind the proxy (health, last check, requests in flight, models) and the
 * load per model (counted requests running and waiting). Both refresh every 5 s.
 */
import { useCallback, useEffect, useState } from "react";
import { useClient, useResource } from "../../api/context";
import type { ModelLoad, Upstream } from "../../api/types";
import { Icon } from "../../components/Icon";
import { PageHeader } from "../../components/PageHeader";
import { EmptyState, ErrorState, SkeletonRows } from "../../components/States";
import { Time } from "../../components/Time";
import { formatNumber } from "../../format";
import { Link, useTitle } from "../../router";

const REFRESH_MS = 5000;

export function UpstreamsPage() {
  useTitle("Upstreams");
  const client = useClient();
  const upstreams = useResource(() => client.listUpstreams(), [client]);
  const queue = useResource(() => client.showQueue(), [client]);
  const [checked, setChecked] = useState<Date | null>(null);
  const reloadUpstreams = upstreams.reload;
  const reloadQueue = queue.reload;
  const reload = useCallback(() => Promise.all([reloadUpstreams(), reloadQueue()]), [reloadUpstreams, reloadQueue]);

  useEffect(() => {
    if (upstreams.data) setChecked(new Date());
  }, [upstreams.data]);

  useEffect(() => {
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") void reload();
    }, REFRESH_MS);
    return () => clearInterval(timer);
  }, [reload]);

  const queueFailed = queue.error !== undefined && !queue.data;
  const healthy = upstreams.data?.filter((u) => u.healthy).length ?? 0;

  return (
    <>
      <PageHeader
        title="Upstreams"
        description={
          <>
            The Ollama servers requests go to. Change the list in <Link to="/settings">Settings</Link>.
          </>
        }
        actions={
          <button type="button" className="btn btn-secondary" onClick={() => void reload()}>
            <Icon name="refresh" className={(upstreams.loading && upstreams.data) || (queue.loading && queue.data) ? "spin" : undefined} /> Refresh
          </button>
        }
      />
      {upstreams.error !== undefined && <ErrorState error={upstreams.error} what="the upstreams" onRetry={() => void reload()} />}
      {upstreams.data && upstreams.data.length > 0 && (
        <p className="muted small live-line">
          <span className={healthy === upstreams.data.length ? "dot dot-ok" : healthy === 0 ? "dot dot-bad" : "dot dot-warn"} />
          {healthy} of {upstreams.data.length} healthy · updated every {REFRESH_MS / 1000} s
          {checked && ` · last at ${checked.toLocaleTimeString("en-GB")}`}
        </p>
      )}
      {upstreams.data && upstreams.data.length === 0 ? (
        <EmptyState icon="server" title="No upstreams configured">
          Set OLLAMA_URL, or add a URL in Settings.
        </EmptyState>
      ) : (
        (upstreams.data || upstreams.loading) && (
          <section className="card card-flush">
            <div className="table-wrap">
              <table className="table">
                <caption className="visually-hidden">Ollama upstreams</caption>
                <thead>
                  <tr>
                    <th scope="col">Upstream</th>
                    <th scope="col">Health</th>
                    <th scope="col">Last check</th>
                    <th scope="col" className="num">In flight</th>
                    <th scope="col">Models</th>
                  </tr>
                </thead>
                <tbody>
                  {!upstreams.data && <SkeletonRows columns={5} rows={2} />}
                  {upstreams.data?.map((u) => <UpstreamRow key={u.url} upstream={u} />)}
                </tbody>
              </table>
            </div>
          </section>
        )
      )}

      {/* When both fail (admin API down), the upstreams' error says it once. */}
      {!(queueFailed && upstreams.error !== undefined) && (
        <>
          <h2 className="section-title section-title-spaced">Load per model</h2>
          <p className="muted small section-intro">
            Counted requests on this instance: running on a host, and waiting for a parallel slot of their key or in the fair
            queue for a host at its max concurrency.
          </p>
          {queueFailed ? (
            <ErrorState error={queue.error} what="the load per model" onRetry={() => void reloadQueue()} />
          ) : (
            <section className="card card-flush">
              {queue.data && queue.data.models.length === 0 ? (
                <p className="table-empty">No counted requests yet</p>
              ) : (
                <div className="table-wrap">
                  <table className="table">
                    <caption className="visually-hidden">Running and waiting requests per model</caption>
                    <thead>
                      <tr>
                        <th scope="col">Model</th>
                        <th scope="col" className="num">Running</th>
                        <th scope="col" className="num">Waiting</th>
                      </tr>
                    </thead>
                    <tbody>
                      {!queue.data && <SkeletonRows columns={3} rows={2} />}
                      {queue.data?.models.map((m) => <ModelLoadRow key={m.model} load={m} />)}
                    </tbody>
                  </table>
                </div>
              )}
            </section>
          )}
        </>
      )}
    </>
  );
}

function ModelLoadRow({ load }: { load: ModelLoad }) {
  return (
    <tr>
      <td data-label="Model" className="mono">
        {load.model}
      </td>
      <td data-label="Running" className="num">
        {formatNumber(load.running)}
      </td>
      <td data-label="Waiting" className="num">
        {load.waiting > 0 ? <strong>{formatNumber(load.waiting)}</strong> : formatNumber(load.waiting)}
      </td>
    </tr>
  );
}

function UpstreamRow({ upstream }: { upstream: Upstream }) {
  return (
    <tr>
      <td data-label="Upstream" className="mono">
        {upstream.url}
      </td>
      <td data-label="Health">
        {upstream.healthy ? (
          <span className="badge badge-active">
            <span className="badge-dot" aria-hidden="true" />
            Healthy
          </span>
        ) : (
          <span className="badge badge-down">
            <span className="badge-dot" aria-hidden="true" />
            Unreachable
          </span>
        )}
      </td>
      <td data-label="Last check" className="nowrap">
        {upstream.last_check ? <Time value={upstream.last_check} relative year={false} /> : <span className="muted">Not yet</span>}
      </td>
      <td data-label="In flight" className="num">
        {formatNumber(upstream.inflight)}
      </td>
      <td data-label="Models">
        {upstream.models.length === 0 ? (
          <span className="muted">None listed</span>
        ) : (
          <span className="tag-list">
            {upstream.models.map((m) => (
              <span className="tag" key={m}>
                {m}
              </span>
            ))}
          </span>
        )}
      </td>
    </tr>
  );
}
