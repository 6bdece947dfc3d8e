/**
 * Audit entries as a table (time, client, action, key or team, changes) and a "Load more" button
 * for older ones.
 */
import { describeError } from "../../api/client";
import type { AuditEntry } from "../../api/types";
import { ErrorNote, SkeletonRows } from "../../components/States";
import { formatRelative, formatTime } from "../../format";
import { Link } from "../../router";
import { AuditDiff } from "./AuditDiff";
import { actionOf, teamOf } from "./auditFormat";
import type { AuditFeed } from "./useAudit";

const CLIENTS: Record<string, string> = {
  cli: "The llm-quota command line",
  gateway: "The gateway itself (usage alerts)",
};

export function AuditTable({ feed, showKey, caption }: { feed: AuditFeed; showKey: boolean; caption: string }) {
  const columns = showKey ? 5 : 4;
  return (
    <>
      <div className="table-wrap">
        <table className="table audit-table">
          <caption className="visually-hidden">{caption}</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Client</th>
              <th scope="col">Action</th>
              {showKey && (
                <th scope="col" className="audit-key">
                  Key
                </th>
              )}
              <th scope="col">Changes</th>
            </tr>
          </thead>
          <tbody>
            {!feed.entries && feed.loading && <SkeletonRows columns={columns} />}
            {feed.entries?.map((e) => (
              <AuditRow key={e.id} entry={e} showKey={showKey} />
            ))}
          </tbody>
        </table>
      </div>
      {feed.entries && feed.entries.length > 0 && (
        <div className="table-more">
          {feed.moreError !== undefined && <ErrorNote>Could not load older entries: {describeError(feed.moreError)}</ErrorNote>}
          {!feed.done ? (
            <button type="button" className="btn btn-secondary" onClick={() => void feed.loadMore()} disabled={feed.loadingMore}>
              {feed.loadingMore ? "Loading…" : "Load more"}
            </button>
          ) : (
            <span className="muted small">
              {feed.entries.length === 1 ? "The only entry" : `All ${feed.entries.length} entries`} shown.
            </span>
          )}
        </div>
      )}
    </>
  );
}

function AuditRow({ entry, showKey }: { entry: AuditEntry; showKey: boolean }) {
  const action = actionOf(entry.action);
  return (
    <tr data-audit-id={entry.id}>
      <td data-label="Time">
        <EntryTime at={entry.at} />
      </td>
      <td data-label="Client" className="mono small" title={CLIENTS[entry.client]}>
        {entry.client}
      </td>
      <td data-label="Action">
        <span className={`badge badge-audit badge-audit-${action.tone}`} title={entry.action}>
          {action.label}
        </span>
      </td>
      {showKey && (
        <td data-label="Key">
          <KeyCell entry={entry} />
        </td>
      )}
      <td data-label="Changes">
        <AuditDiff before={entry.before} after={entry.after} />
      </td>
    </tr>
  );
}

/** `1 Dec 2026,` over `16:20:05 UTC+01:00`: with seconds (a busy minute has many entries), on two lines (room for the changes). */
function EntryTime({ at }: { at: string }) {
  const [date, clock] = formatTime(at, { seconds: true }).split(", ");
  return (
    <time dateTime={at} title={`${at} (${formatRelative(at)})`} className="audit-time">
      <span>
        {date}
        {clock !== undefined && ","}
      </span>{" "}
      {clock !== undefined && <span className="muted">{clock}</span>}
    </time>
  );
}

function KeyCell({ entry }: { entry: AuditEntry }) {
  const team = teamOf(entry);
  if (team) {
    return (
      <span>
        <span className="muted small">Team </span>
        {entry.action === "team.deleted" ? (
          <>
            {team.name} <span className="muted small">(deleted)</span>
          </>
        ) : (
          <Link to={`/teams/${team.id}`} className="key-name">
            {team.name}
          </Link>
        )}
      </span>
    );
  }
  if (entry.key_id == null) return <span className="muted">—</span>;
  const name = entry.key_name ?? `key ${entry.key_id}`;
  if (entry.action === "key.deleted") {
    return (
      <span>
        {name} <span className="muted small">(deleted)</span>
      </span>
    );
  }
  return (
    <Link to={`/keys/${entry.key_id}`} className="key-name">
      {name}
    </Link>
  );
}
