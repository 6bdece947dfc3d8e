/**
 * 30 days of a key's usage as two small SVG bar charts sharing one x axis: tokens per day
 * (prompt and completion stacked) and requests per day. Hover or arrow keys pick a day; a
 * table with the same numbers is one click away.
 */
import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import type { DailyUsage } from "../../api/types";
import { formatCompact, formatDay, formatNumber } from "../../format";

/** Drawing width when the real one is unknown (tests, first paint). */
const DEFAULT_WIDTH = 720;
const LEFT = 48;
const RIGHT = 8;

/** The element's width in CSS pixels, so the SVG is drawn 1:1 (crisp text at any size). */
export function useWidth<T extends HTMLElement>(): [React.RefObject<T | null>, number] {
  const ref = useRef<T>(null);
  const [width, setWidth] = useState(DEFAULT_WIDTH);
  useEffect(() => {
    const element = ref.current;
    if (!element || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => {
      const w = Math.round(entry.contentRect.width);
      if (w > 0) setWidth(w);
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

/** A round axis maximum ≥ `max` (1, 2, 2.5, 5 × 10^k) and its 4 steps. */
export function niceScale(max: number): { top: number; ticks: number[] } {
  if (max <= 0) return { top: 4, ticks: [0, 1, 2, 3, 4] };
  const raw = max / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? 10 * power;
  const rounded = Math.max(1, step % 1 === 0 ? step : Math.ceil(step));
  return { top: rounded * 4, ticks: [0, 1, 2, 3, 4].map((i) => i * rounded) };
}

interface Series {
  key: string;
  label: string;
  value: (d: DailyUsage) => number;
  className: string;
}

function BarChart({
  days,
  series,
  height,
  title,
  active,
  setActive,
  showDates,
  width,
}: {
  width: number;
  days: DailyUsage[];
  series: Series[];
  height: number;
  title: string;
  active: number | null;
  setActive: (i: number | null) => void;
  showDates: boolean;
}) {
  const WIDTH = Math.max(280, width);
  const PLOT = WIDTH - LEFT - RIGHT;
  const bottom = showDates ? 22 : 6;
  const top = 8;
  const plotHeight = height - top - bottom;
  const totals = days.map((d) => series.reduce((s, x) => s + x.value(d), 0));
  const { top: max, ticks } = niceScale(Math.max(0, ...totals));
  const slot = PLOT / Math.max(1, days.length);
  const barWidth = Math.max(2, Math.min(18, slot * 0.64));
  const y = (v: number) => top + plotHeight - (v / max) * plotHeight;
  const labelEvery = Math.ceil(days.length / Math.max(2, Math.floor(PLOT / 90)));
  const lastLabelled = (i: number) => i === days.length - 1 || (i % labelEvery === 0 && days.length - 1 - i >= labelEvery / 2);

  return (
    <svg className="chart" viewBox={`0 0 ${WIDTH} ${height}`} role="img" aria-label={title} width={WIDTH} height={height}>
      <ChartGrid ticks={ticks} y={y} left={LEFT} right={WIDTH - RIGHT} />
      {days.map((d, i) => {
        const x = LEFT + i * slot + (slot - barWidth) / 2;
        let base = 0;
        return (
          <g key={d.date} className={active === i ? "chart-day chart-day-active" : "chart-day"}>
            <rect
              className="chart-hit"
              x={LEFT + i * slot}
              y={top}
              width={slot}
              height={plotHeight}
              onMouseEnter={() => setActive(i)}
            />
            {series.map((s) => {
              const v = s.value(d);
              if (v <= 0) return null;
              const y0 = y(base);
              base += v;
              const y1 = y(base);
              return <rect key={s.key} className={s.className} x={x} y={y1} width={barWidth} height={Math.max(1, y0 - y1)} rx={1.5} />;
            })}
            {showDates && lastLabelled(i) && (
              <text className="chart-axis" x={LEFT + i * slot + slot / 2} y={height - 6} textAnchor="middle">
                {formatDay(d.date)}
              </text>
            )}
          </g>
        );
      })}
    </svg>
  );
}

export function UsageChart({ days }: { days: DailyUsage[] }) {
  const [active, setActive] = useState<number | null>(null);
  const tableId = useId();
  const [frame, width] = useWidth<HTMLDivElement>();
  const total = (f: (d: DailyUsage) => number) => days.reduce((s, d) => s + f(d), 0);
  const requests = total((d) => d.requests);
  const prompt = total((d) => d.prompt_tokens);
  const completion = total((d) => d.completion_tokens);
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

  const summary = `${days.length} days: ${formatNumber(requests)} requests, ${formatNumber(prompt)} prompt tokens, ${formatNumber(completion)} completion tokens`;

  return (
    <div className="usage-chart">
      <div className="chart-totals">
        <Total label="Requests" value={requests} swatch="swatch-requests" />
        <Total label="Prompt tokens" value={prompt} swatch="swatch-prompt" />
        <Total label="Completion tokens" value={completion} swatch="swatch-completion" />
      </div>
      <div
        ref={frame}
        className="chart-frame"
        tabIndex={0}
        role="group"
        aria-label={`Usage chart, ${summary}. Use the arrow keys to read single days.`}
        onKeyDown={onKeyDown}
        onMouseLeave={() => setActive(null)}
      >
        <div className="chart-readout" aria-live="polite">
          {day && (
            <>
              <strong>{formatDay(day.date)}</strong>
              <span>
                <i className="swatch swatch-requests" /> {formatNumber(day.requests)} requests
              </span>
              <span>
                <i className="swatch swatch-prompt" /> {formatNumber(day.prompt_tokens)} prompt
              </span>
              <span>
                <i className="swatch swatch-completion" /> {formatNumber(day.completion_tokens)} completion
              </span>
            </>
          )}
        </div>
        <div className="chart-label">Tokens per day</div>
        <BarChart
          days={days}
          height={190}
          title={`Tokens per day: ${formatNumber(prompt)} prompt, ${formatNumber(completion)} completion`}
          series={[
            { key: "prompt", label: "Prompt tokens", value: (d) => d.prompt_tokens, className: "bar-prompt" },
            { key: "completion", label: "Completion tokens", value: (d) => d.completion_tokens, className: "bar-completion" },
          ]}
          active={active}
          setActive={setActive}
          showDates={false}
          width={width}
        />
        <div className="chart-label">Requests per day</div>
        <BarChart
          days={days}
          height={118}
          title={`Requests per day: ${formatNumber(requests)} in all`}
          series={[{ key: "requests", label: "Requests", value: (d) => d.requests, className: "bar-requests" }]}
          active={active}
          setActive={setActive}
          showDates
          width={width}
        />
      </div>
      <details className="chart-table">
        <summary aria-controls={tableId}>Show as a table</summary>
        <div className="table-wrap">
          <table className="table table-compact" id={tableId}>
            <thead>
              <tr>
                <th scope="col">Day</th>
                <th scope="col" className="num">Requests</th>
                <th scope="col" className="num">Prompt tokens</th>
                <th scope="col" className="num">Completion tokens</th>
              </tr>
            </thead>
            <tbody>
              {[...days].reverse().map((d) => (
                <tr key={d.date}>
                  <td>{d.date}</td>
                  <td className="num">{formatNumber(d.requests)}</td>
                  <td className="num">{formatNumber(d.prompt_tokens)}</td>
                  <td className="num">{formatNumber(d.completion_tokens)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </div>
  );
}

function Total({ label, value, swatch }: { label: string; value: number; swatch: string }) {
  return (
    <div className="chart-total">
      <span className="chart-total-label">
        <i className={`swatch ${swatch}`} /> {label}
      </span>
      <span className="chart-total-value" title={formatNumber(value)}>
        {formatCompact(value)}
      </span>
    </div>
  );
}

/** The horizontal grid lines of a bar chart, each labelled with its value on the left. */
export function ChartGrid({ ticks, y, left, right }: { ticks: number[]; y: (v: number) => number; left: number; right: number }) {
  return (
    <>
      {ticks.map((t) => (
        <g key={t}>
          <line className="chart-grid" x1={left} x2={right} y1={y(t)} y2={y(t)} />
          <text className="chart-axis" x={left - 8} y={y(t) + 4} textAnchor="end">
            {formatCompact(t)}
          </text>
        </g>
      ))}
    </>
  );
}
