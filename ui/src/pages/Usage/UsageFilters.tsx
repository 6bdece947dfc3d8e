/**
 * The report's range (first and last day, both included), the team whose keys it counts (when
 * there are teams), and what its rows are grouped by.
 */
import { useId } from "react";
import { USAGE_DIMENSIONS, type TeamRef, type UsageDimension } from "../../api/types";
import { ErrorNote } from "../../components/States";

const LABELS: Record<UsageDimension, string> = { key: "Key", model: "Model", day: "Day", team: "Team" };

interface Props {
  from: string;
  to: string;
  groups: readonly UsageDimension[];
  /** The teams to pick from; none (or an API without teams): no team filter and no team grouping. */
  teams: readonly TeamRef[];
  /** Only this team's keys; `null` = every key. */
  teamId: number | null;
  /** Why the range cannot be asked for. */
  problem: string | null;
  onFrom: (value: string) => void;
  onTo: (value: string) => void;
  onGroups: (groups: readonly UsageDimension[]) => void;
  onTeam: (teamId: number | null) => void;
}

export function UsageFilters({ from, to, groups, teams, teamId, problem, onFrom, onTo, onGroups, onTeam }: Props) {
  const id = useId();
  const toggle = (dimension: UsageDimension, on: boolean) =>
    onGroups(USAGE_DIMENSIONS.filter((d) => (d === dimension ? on : groups.includes(d))));
  const withTeams = teams.length > 0 || teamId !== null || groups.includes("team");
  const dimensions = USAGE_DIMENSIONS.filter((d) => d !== "team" || withTeams);
  return (
    <section className="card usage-filters" aria-label="Report">
      <div className="filter-row">
        <div className="field">
          <label className="field-label" htmlFor={`${id}-from`}>
            From
          </label>
          <input
            id={`${id}-from`}
            type="date"
            value={from}
            max={to || undefined}
            onChange={(e) => onFrom(e.target.value)}
            aria-invalid={problem ? true : undefined}
          />
        </div>
        <div className="field">
          <label className="field-label" htmlFor={`${id}-to`}>
            To
          </label>
          <input
            id={`${id}-to`}
            type="date"
            value={to}
            min={from || undefined}
            onChange={(e) => onTo(e.target.value)}
            aria-invalid={problem ? true : undefined}
          />
        </div>
        {withTeams && (
          <div className="field">
            <label className="field-label" htmlFor={`${id}-team`}>
              Team
            </label>
            <select id={`${id}-team`} value={teamId === null ? "" : String(teamId)} onChange={(e) => onTeam(e.target.value === "" ? null : Number(e.target.value))}>
              <option value="">All keys</option>
              {teams.map((t) => (
                <option key={t.id} value={String(t.id)}>
                  {t.name}
                </option>
              ))}
              {teamId !== null && !teams.some((t) => t.id === teamId) && <option value={String(teamId)}>Team {teamId}</option>}
            </select>
          </div>
        )}
        <fieldset className="field">
          <legend className="field-label">Group rows by</legend>
          <div className="checkbox-row">
            {dimensions.map((d) => (
              <label key={d} className="checkbox">
                <input type="checkbox" checked={groups.includes(d)} onChange={(e) => toggle(d, e.target.checked)} />
                <span>{LABELS[d]}</span>
              </label>
            ))}
          </div>
        </fieldset>
      </div>
      <p className="field-hint">
        Days of the server's time zone, both included.{" "}
        {groups.length === 0 ? "Nothing ticked: one row with the grand total." : "The CSV has the same rows."}
      </p>
      {problem && <ErrorNote>{problem}</ErrorNote>}
    </section>
  );
}
