/**
 * How much of a limit is used: `1,234 / 10,000` (GPU time: `12.5 s / 1 h`) over a bar that
 * turns amber, then red.
 */
import { formatCompact, formatDuration, formatNumber, formatSeconds } from "../format";

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
  seconds = false,
}: {
  used: number;
  limit: number | null;
  /** What is counted, for screen readers: "tokens today". */
  label: string;
  compact?: boolean;
  /** The values are seconds (GPU time): shown as durations, exact to the millisecond in the tooltip. */
  seconds?: boolean;
}) {
  const level = usageLevel(used, limit);
  const fmt = seconds ? formatDuration : compact ? formatCompact : formatNumber;
  const exact = seconds ? (n: number) => formatSeconds(n, 3) : formatNumber;
  const percent = limit === null ? 0 : limit === 0 ? 100 : Math.min(100, (used / limit) * 100);
  const text = limit === null ? `${fmt(used)} · no limit` : `${fmt(used)} / ${fmt(limit)}`;
  return (
    <div className={`usage usage-${level}`} title={limit === null ? `${exact(used)} ${label}, no limit` : `${exact(used)} of ${exact(limit)} ${label}`}>
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
          aria-valuetext={`${exact(used)} of ${exact(limit)}`}
        >
          <div className="usage-fill" style={{ width: `${percent}%` }} />
        </div>
      )}
    </div>
  );
}
