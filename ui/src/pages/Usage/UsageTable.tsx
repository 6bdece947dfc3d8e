/** The report's rows: a column per dimension grouped by, the counts, and a total row. */
import type { UsageDimension, UsageRow } from "../../api/types";
import { SkeletonRows } from "../../components/States";
import { formatNumber, formatSeconds } from "../../format";
import { Link } from "../../router";
import { totalsOf } from "./usage";

const HEADINGS: Record<UsageDimension, string> = { key: "Key", model: "Model", day: "Day", team: "Team" };

/** The columns' order: a key's team before the key. */
const COLUMNS: readonly UsageDimension[] = ["team", "key", "model", "day"];

interface Props {
  /** The dimensions the rows were asked for with. */
  groups: readonly UsageDimension[];
  rows: readonly UsageRow[] | undefined;
  loading: boolean;
}

export function UsageTable({ groups: asked, rows, loading }: Props) {
  const groups = COLUMNS.filter((d) => asked.includes(d));
  const totals = totalsOf(rows ?? []);
  const labelColumns = Math.max(1, groups.length);
  return (
    <div className="table-wrap">
      <table className="table table-compact usage-table">
        <caption className="visually-hidden">Usage by {groups.length > 0 ? groups.join(", ") : "nothing (one total)"}</caption>
        <thead>
          <tr>
            {groups.length === 0 && <th scope="col">Usage</th>}
            {groups.map((g) => (
              <th scope="col" key={g}>
                {HEADINGS[g]}
              </th>
            ))}
            <th scope="col" className="num">Requests</th>
            <th scope="col" className="num">Prompt tokens</th>
            <th scope="col" className="num">Completion tokens</th>
            <th scope="col" className="num">Total tokens</th>
            <th scope="col" className="num" title="Seconds on the Ollama hosts × their gpu_weight">
              GPU seconds
            </th>
          </tr>
        </thead>
        <tbody>
          {!rows && loading && <SkeletonRows columns={labelColumns + 5} />}
          {rows?.map((r) => (
            <tr key={`${r.date ?? ""}|${r.team_id ?? ""}|${r.key_id ?? ""}|${r.model ?? ""}`}>
              {groups.length === 0 && <td data-label="Usage">All keys, models and days</td>}
              {groups.map((g) => (
                <td key={g} data-label={HEADINGS[g]} className={g === "model" ? "mono" : g === "day" ? "nowrap" : undefined}>
                  <Dimension row={r} dimension={g} />
                </td>
              ))}
              <Counts requests={r.requests} prompt={r.prompt_tokens} completion={r.completion_tokens} gpu={r.gpu_seconds} />
            </tr>
          ))}
        </tbody>
        {rows && rows.length > 0 && groups.length > 0 && (
          <tfoot>
            <tr>
              <th scope="row" colSpan={labelColumns}>
                Total
              </th>
              <Counts requests={totals.requests} prompt={totals.prompt_tokens} completion={totals.completion_tokens} gpu={totals.gpu_seconds} />
            </tr>
          </tfoot>
        )}
      </table>
    </div>
  );
}

function Dimension({ row, dimension }: { row: UsageRow; dimension: UsageDimension }) {
  if (dimension === "team") {
    if (row.team_id == null) return <span className="muted">No team</span>;
    return (
      <Link to={`/teams/${row.team_id}`} className="key-name">
        {row.team_name ?? `team ${row.team_id}`}
      </Link>
    );
  }
  if (dimension === "key") {
    if (row.key_id == null) return <span className="muted">—</span>;
    return (
      <Link to={`/keys/${row.key_id}`} className="key-name">
        {row.key_name ?? `key ${row.key_id}`}
      </Link>
    );
  }
  const value = dimension === "model" ? row.model : row.date;
  return value == null ? <span className="muted">—</span> : <>{value}</>;
}

function Counts({ requests, prompt, completion, gpu }: { requests: number; prompt: number; completion: number; gpu: number }) {
  return (
    <>
      <td data-label="Requests" className="num">
        {formatNumber(requests)}
      </td>
      <td data-label="Prompt tokens" className="num">
        {formatNumber(prompt)}
      </td>
      <td data-label="Completion tokens" className="num">
        {formatNumber(completion)}
      </td>
      <td data-label="Total tokens" className="num">
        {formatNumber(prompt + completion)}
      </td>
      <td data-label="GPU seconds" className="num" title={`${gpu.toFixed(3)} s`}>
        {formatSeconds(gpu)}
      </td>
    </>
  );
}
