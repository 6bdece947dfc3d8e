/** The audit trail: every change to keys and settings, and every usage alert sent, newest first. */
import { useClient } from "../../api/context";
import { Icon } from "../../components/Icon";
import { PageHeader } from "../../components/PageHeader";
import { EmptyState, ErrorState } from "../../components/States";
import { useTitle } from "../../router";
import { AuditTable } from "./AuditTable";
import { useAudit } from "./useAudit";

export function AuditPage() {
  useTitle("Audit");
  const client = useClient();
  const feed = useAudit(client);
  return (
    <>
      <PageHeader
        title="Audit"
        description="Every change to keys and settings, who made it, and every usage alert sent, newest first. Secrets are never recorded."
        actions={
          <button type="button" className="btn btn-secondary" onClick={() => void feed.reload()} disabled={feed.loading && !feed.entries}>
            <Icon name="refresh" className={feed.loading && feed.entries ? "spin" : undefined} /> Refresh
          </button>
        }
      />
      {feed.error !== undefined && <ErrorState error={feed.error} what="the audit trail" onRetry={() => void feed.reload()} />}
      {feed.entries && feed.entries.length === 0 ? (
        <EmptyState icon="history" title="Nothing recorded yet">
          Creating, editing, rotating or deleting a key, changing the settings and usage alerts show up here.
        </EmptyState>
      ) : (
        (feed.entries || (feed.loading && feed.error === undefined)) && (
          <section className="card card-flush">
            <AuditTable feed={feed} showKey caption="Audit trail, newest first" />
          </section>
        )
      )}
    </>
  );
}
