/**
 * Usage per day of the range as one SVG bar chart, each bar stacked by key, team or model (the
 * largest at the bottom, one colour each; past seven, the rest share "others"). Hover or the
 * arrow keys pick a day; the legend gives each series' total.
 */
import { useState, type KeyboardEvent } from "react";
import type { UsageRow } from "../../api/types";
import { formatCompact, formatDay, formatNumber, formatSeconds } from "../../format";
import { Link } from "../../router";
import { ChartGrid, niceScale, useWidth } from "../KeyDetail/UsageChart";
import { METRIC_TITLE, METRIC_UNIT, stackRows, type Metric, type StackBy } from "./usage";

const LEGEND: Record<StackBy, string> = { key: "Keys", model: "Models", team: "Teams" };

const LEFT = 48;
const RIGHT = 8;
const HEIGHT = 230;
const TOP = 8;
const BOTTOM = 22;

interface Props {
  /** Every day of the range, in order. */
  dates: readonly string[];
  /** Rows grouped by `by` and day. */
  rows: readonly UsageRow[];
  by: StackBy;
  metric: Metric;
}

export function StackedUsageChart({ dates, rows, by, metric }: Props) {
  const [frame, width] = useWidth<HTMLDivElement>();
  const [active, setActive] = useState<number | null>(null);
  const { series, days } = stackRows(rows, dates, by, metric);
  const unit = METRIC_UNIT[metric];
  // GPU time is fractional seconds; the rest are counts.
  const amount = metric === "gpu" ? formatSeconds : formatNumber;
  const short = metric === "gpu" ? formatSeconds : formatCompact;
  const total = days.reduce((sum, d) => sum + d.total, 0);

  const WIDTH = Math.max(280, width);
  const PLOT = WIDTH - LEFT - RIGHT;
  const plotHeight = HEIGHT - TOP - BOTTOM;
  const { top: max, ticks } = niceScale(Math.max(0, ...days.map((d) => d.total)));
  const slot = PLOT / Math.max(1, days.length);
  const barWidth = Math.max(1, Math.min(22, slot * 0.68));
  const y = (v: number) => TOP + plotHeight - (v / max) * plotHeight;
  const labelEvery = Math.ceil(days.length / Math.max(2, Math.floor(PLOT / 90)));
  const labelled = (i: number) => i === days.length - 1 || (i % labelEvery === 0 && days.length - 1 - i >= labelEvery / 2);

  const shown = active ?? (days.length > 0 ? days.length - 1 : null);
  const day = shown === null ? null : days[shown];

  const onKeyDown = (event: KeyboardEvent) => {
    if (days.length === 0) return;
    const current = active ?? days.length - 1;
    if (event.key === "ArrowLeft") setActive(Math.max(0, current - 1));
    else if (event.key === "ArrowRight") setActive(Math.min(days.length - 1, current + 1));
    else if (event.key === "Home") setActive(0);
    else if (event.key === "End") setActive(days.length - 1);
    else return;
    event.preventDefault();
  };

  const title = `${METRIC_TITLE[metric]} per day by ${by}: ${amount(total)} in ${days.length} days`;

  return (
    <div className="stacked-chart">
      <ul className="chart-legend" aria-label={`${LEGEND[by]} in the chart`}>
        {series.map((s) => (
          <li key={s.id}>
            <i className={`swatch series-${s.colour}`} aria-hidden="true" />
            {s.keyId !== undefined || s.teamId !== undefined ? (
              <Link to={s.keyId !== undefined ? `/keys/${s.keyId}` : `/teams/${s.teamId}`} className="legend-label">
                {s.label}
              </Link>
            ) : (
              <span className={by === "model" && s.id !== "others" ? "legend-label mono" : "legend-label"}>{s.label}</span>
            )}
            <span className="legend-value" title={`${amount(s.total)} ${unit}`}>
              {short(s.total)}
            </span>
          </li>
        ))}
      </ul>
      <div
        ref={frame}
        className="chart-frame"
        tabIndex={0}
        role="group"
        aria-label={`Usage per day, ${days.length} days. Use the arrow keys to read single days.`}
        onKeyDown={onKeyDown}
        onMouseLeave={() => setActive(null)}
      >
        <div className="chart-readout" aria-live="polite">
          {day && (
            <>
              <strong>{formatDay(day.date)}</strong>
              <span>
                {amount(day.total)} {unit}
              </span>
              {series.map((s, i) =>
                day.values[i] > 0 ? (
                  <span key={s.id}>
                    <i className={`swatch series-${s.colour}`} /> {s.label} {amount(day.values[i])}
                  </span>
                ) : null,
              )}
            </>
          )}
        </div>
        <svg className="chart" viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={title} width={WIDTH} height={HEIGHT}>
          <ChartGrid ticks={ticks} y={y} left={LEFT} right={WIDTH - RIGHT} />
          {days.map((d, i) => {
            const x = LEFT + i * slot + (slot - barWidth) / 2;
            let base = 0;
            return (
              <g key={d.date} className={active === i ? "chart-day chart-day-active" : "chart-day"} data-date={d.date}>
                <rect className="chart-hit" x={LEFT + i * slot} y={TOP} width={slot} height={plotHeight} onMouseEnter={() => setActive(i)} />
                {series.map((s, j) => {
                  const v = d.values[j];
                  if (v <= 0) return null;
                  const y0 = y(base);
                  base += v;
                  const y1 = y(base);
                  return <rect key={s.id} className={`bar series-${s.colour}`} x={x} y={y1} width={barWidth} height={Math.max(1, y0 - y1)} rx={1.5} />;
                })}
                {labelled(i) && (
                  <text className="chart-axis" x={LEFT + i * slot + slot / 2} y={HEIGHT - 6} textAnchor="middle">
                    {formatDay(d.date)}
                  </text>
                )}
              </g>
            );
          })}
        </svg>
      </div>
    </div>
  );
}
