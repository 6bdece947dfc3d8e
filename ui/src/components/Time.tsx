/** A timestamp as `30 Nov 2026, 00:00 UTC+01:00`, with the relative time on hover. */
import { formatRelative, formatTime } from "../format";

export function Time({ value, relative = false, year }: { value: string; relative?: boolean; year?: boolean }) {
  const rel = formatRelative(value);
  return (
    <time dateTime={value} title={`${value} (${rel})`}>
      {formatTime(value, { year })}
      {relative && rel && <span className="muted"> · {rel}</span>}
    </time>
  );
}
