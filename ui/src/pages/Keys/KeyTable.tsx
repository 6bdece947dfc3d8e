/**
 * The keys as a table (cards when narrow): name, status, team, the limits with usage, models,
 * expiry. GPU time gets a column only when some key has a GPU-time limit, and the team one only
 * when asked for (when teams exist): most gateways have neither, and an empty column would crowd
 * the table.
 */
import { LIMITS, hasGpuLimit, isSeconds, limitsOf, usedOf, type Key, type Limit } from "../../api/types";
import { KeyStatus } from "../../components/KeyStatus";
import { SkeletonRows } from "../../components/States";
import { formatRelative, formatTime } from "../../format";
import { UsageBar } from "../../components/UsageBar";
import { Link } from "../../router";
import { KeyActions } from "./KeyActions";

interface Props {
  keys: Key[] | undefined;
  loading: boolean;
  onChanged: (key: Key) => void;
  onDeleted: (id: number) => void;
  /** Whether to show each key's team (there are teams). */
  showTeam?: boolean;
  caption?: string;
}

const [DAY_TOKENS, MONTH_TOKENS, DAY_REQUESTS, MONTH_REQUESTS, DAY_GPU, MONTH_GPU] = LIMITS;

export function KeyTable({ keys, loading, onChanged, onDeleted, showTeam = false, caption = "API keys with their limits and current usage" }: Props) {
  const gpu = keys?.some(hasGpuLimit) ?? false;
  return (
    <div className="table-wrap">
      <table className="table key-table">
        <caption className="visually-hidden">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Status</th>
            {showTeam && <th scope="col">Team</th>}
            <th scope="col">Tokens <span className="th-sub">today · this month</span></th>
            <th scope="col">Requests <span className="th-sub">today · this month</span></th>
            {gpu && (
              <th scope="col">
                GPU time <span className="th-sub">today · this month</span>
              </th>
            )}
            <th scope="col">Models</th>
            <th scope="col">Expires</th>
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {!keys && loading && <SkeletonRows columns={7} />}
          {keys?.map((key) => (
            <KeyRow key={key.id} keyData={key} gpu={gpu} showTeam={showTeam} onChanged={onChanged} onDeleted={onDeleted} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function KeyRow({
  keyData,
  gpu,
  showTeam,
  onChanged,
  onDeleted,
}: {
  keyData: Key;
  /** Whether the table has the GPU-time column. */
  gpu: boolean;
  /** Whether the table has the team column. */
  showTeam: boolean;
  onChanged: (k: Key) => void;
  onDeleted: (id: number) => void;
}) {
  const limits = limitsOf(keyData);
  const bar = (limit: Limit, when: string) => (
    <UsageBar used={usedOf(keyData, limit)} limit={limits[limit.field]} label={`${limit.unit} ${when}`} seconds={isSeconds(limit)} compact />
  );
  const pair = (day: Limit, month: Limit) => (
    <div className="usage-pair">
      {bar(day, "today")}
      {bar(month, "this month")}
    </div>
  );
  return (
    <tr className={keyData.is_active ? undefined : "row-muted"}>
      <td data-label="Name">
        <Link to={`/keys/${keyData.id}`} className="key-name">
          {keyData.name}
        </Link>
        <div className="mono muted small">{keyData.key_prefix}…</div>
      </td>
      <td data-label="Status">
        <KeyStatus keyData={keyData} />
      </td>
      {showTeam && (
        <td data-label="Team">
          {keyData.team ? (
            <Link to={`/teams/${keyData.team.id}`} className="team-link">
              {keyData.team.name}
            </Link>
          ) : (
            <span className="muted">—</span>
          )}
        </td>
      )}
      <td data-label="Tokens day / month">{pair(DAY_TOKENS, MONTH_TOKENS)}</td>
      <td data-label="Requests day / month">{pair(DAY_REQUESTS, MONTH_REQUESTS)}</td>
      {gpu && (
        <td data-label="GPU time day / month">
          {hasGpuLimit(keyData) ? pair(DAY_GPU, MONTH_GPU) : <span className="muted">No limit</span>}
        </td>
      )}
      <td data-label="Models">
        <Models models={keyData.allowed_models ?? null} />
      </td>
      <td data-label="Expires" className="nowrap">
        {keyData.expires_at ? <Expiry value={keyData.expires_at} /> : <span className="muted">Never</span>}
      </td>
      <td className="actions-cell">
        <KeyActions keyData={keyData} onChanged={onChanged} onDeleted={onDeleted} variant="icons" />
      </td>
    </tr>
  );
}

/** The date on one line, the time with its zone below (keeps the column narrow). */
function Expiry({ value }: { value: string }) {
  const text = formatTime(value);
  const [date, time] = text.split(", ");
  return (
    <time dateTime={value} title={`${text} (${formatRelative(value)})`} className="expiry">
      <span>{date}</span>
      {time && <span className="muted small">{time}</span>}
    </time>
  );
}

export function Models({ models, max = 2 }: { models: string[] | null; max?: number }) {
  if (models === null) return <span className="muted">All local</span>;
  const shown = models.slice(0, max);
  const rest = models.length - shown.length;
  return (
    <span className="tag-list" title={models.join(", ")}>
      {shown.map((m) => (
        <span key={m} className="tag">
          {m}
        </span>
      ))}
      {rest > 0 && <span className="tag tag-more">+{rest}</span>}
    </span>
  );
}
