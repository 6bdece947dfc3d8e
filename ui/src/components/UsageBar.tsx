/** How much of a limit is used: `1,234 / 10,000` over a bar that turns amber, then red. */
import { formatCompact, formatNumber } from "../format";

export function usageLevel(used: number, limit: number | null): "ok" | "warn" | "full" | "none" {
  if (limit === null) return "none";
  if (limit === 0 || used >= limit) return "full";
  return used / limit >= 0.8 ? "warn" : "ok";
}

export function UsageBar({
  used,
  limit,
  label,
  compact = false,
}: {
  used: number;
  limit: number | null;
  /** What is counted, for screen readers: "tokens today". */
  label: string;
  compact?: boolean;
}) {
  const level = usageLevel(used, limit);
  const fmt = compact ? formatCompact : formatNumber;
  const percent = limit === null ? 0 : limit === 0 ? 100 : Math.min(100, (used / limit) * 100);
  const text = limit === null ? `${fmt(used)} · no limit` : `${fmt(used)} / ${fmt(limit)}`;
  return (
    <div className={`usage usage-${level}`} title={limit === null ? `${formatNumber(used)} ${label}, no limit` : `${formatNumber(used)} of ${formatNumber(limit)} ${label}`}>
      <div className="usage-text">{text}</div>
      {limit === null ? (
        <div className="usage-track usage-track-none" aria-hidden="true" />
      ) : (
        <div
          className="usage-track"
          role="meter"
          aria-label={label}
          aria-valuemin={0}
          aria-valuemax={limit}
          aria-valuenow={Math.min(used, limit)}
          aria-valuetext={`${formatNumber(used)} of ${formatNumber(limit)}`}
        >
          <div className="usage-fill" style={{ width: `${percent}%` }} />
        </div>
      )}
    </div>
  );
}
