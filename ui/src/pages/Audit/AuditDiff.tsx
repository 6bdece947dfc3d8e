/** The fields an audit entry changed: `Tokens per day 50,000 → 80,000`, one line each. */
import { changesOf } from "./auditFormat";

export function AuditDiff({ before, after }: { before: unknown; after: unknown }) {
  const changes = changesOf(before, after);
  if (changes.length === 0) return <span className="muted">No field changed</span>;
  return (
    <dl className="diff">
      {changes.map((c) => (
        <div className="diff-row" key={c.field}>
          <dt title={c.field}>{c.label}</dt>{" "}
          <dd>
            {c.before !== undefined && <del className="diff-old">{c.before}</del>}
            {c.before !== undefined && c.after !== undefined && (
              <span className="diff-arrow"> → </span>
            )}
            {c.after !== undefined && <ins className="diff-new">{c.after}</ins>}
          </dd>
        </div>
      ))}
    </dl>
  );
}
