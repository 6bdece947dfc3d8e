/**
 * The teams as a table (cards when narrow): name, description, how many keys, and the shared
 * limits with the usage of all the team's keys, as in the keys table. GPU time gets a column
 * only when some team has a GPU-time limit.
 */
import { LIMITS, hasGpuLimit, isSeconds, limitsOf, usedOf, type Limit, type Team } from "../../api/types";
import { SkeletonRows } from "../../components/States";
import { UsageBar } from "../../components/UsageBar";
import { formatNumber } from "../../format";
import { Link } from "../../router";
import { TeamActions } from "./TeamActions";

interface Props {
  teams: Team[] | undefined;
  loading: boolean;
  onChanged: (team: Team) => void;
  onDeleted: (id: number) => void;
}

const [DAY_TOKENS, MONTH_TOKENS, DAY_REQUESTS, MONTH_REQUESTS, DAY_GPU, MONTH_GPU] = LIMITS;

export function TeamTable({ teams, loading, onChanged, onDeleted }: Props) {
  const gpu = teams?.some(hasGpuLimit) ?? false;
  return (
    <div className="table-wrap">
      <table className="table key-table team-table">
        <caption className="visually-hidden">Teams with their shared limits and current usage</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Description</th>
            <th scope="col" className="num">
              Keys
            </th>
            <th scope="col">
              Tokens <span className="th-sub">today · this month</span>
            </th>
            <th scope="col">
              Requests <span className="th-sub">today · this month</span>
            </th>
            {gpu && (
              <th scope="col">
                GPU time <span className="th-sub">today · this month</span>
              </th>
            )}
            <th scope="col">
              <span className="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {!teams && loading && <SkeletonRows columns={6} />}
          {teams?.map((team) => (
            <TeamRow key={team.id} team={team} gpu={gpu} onChanged={onChanged} onDeleted={onDeleted} />
          ))}
        </tbody>
      </table>
    </div>
  );
}

function TeamRow({ team, gpu, onChanged, onDeleted }: { team: Team; gpu: boolean; onChanged: (t: Team) => void; onDeleted: (id: number) => void }) {
  return (
    <tr>
      <td data-label="Name">
        <Link to={`/teams/${team.id}`} className="key-name">
          {team.name}
        </Link>
      </td>
      <td data-label="Description" className="team-description">
        {team.description ? team.description : <span className="muted">—</span>}
      </td>
      <td data-label="Keys" className="num">
        {formatNumber(team.key_count)}
      </td>
      <td data-label="Tokens day / month">
        <UsagePair team={team} day={DAY_TOKENS} month={MONTH_TOKENS} />
      </td>
      <td data-label="Requests day / month">
        <UsagePair team={team} day={DAY_REQUESTS} month={MONTH_REQUESTS} />
      </td>
      {gpu && (
        <td data-label="GPU time day / month">
          {hasGpuLimit(team) ? <UsagePair team={team} day={DAY_GPU} month={MONTH_GPU} /> : <span className="muted">No limit</span>}
        </td>
      )}
      <td className="actions-cell">
        <TeamActions team={team} onChanged={onChanged} onDeleted={onDeleted} variant="icons" />
      </td>
    </tr>
  );
}

/** Today's and this month's usage of the team's keys against the team's limit (the keys table's bars). */
function UsagePair({ team, day, month }: { team: Team; day: Limit; month: Limit }) {
  const limits = limitsOf(team);
  const bar = (limit: Limit, when: string) => (
    <UsageBar used={usedOf(team, limit)} limit={limits[limit.field]} label={`${limit.unit} ${when}`} seconds={isSeconds(limit)} compact />
  );
  return (
    <div className="usage-pair">
      {bar(day, "today")}
      {bar(month, "this month")}
    </div>
  );
}
