/** The report's range (first and last day, both included) and what its rows are grouped by. */
import { useId } from "react";
import { USAGE_DIMENSIONS, type UsageDimension } from "../../api/types";
import { ErrorNote } from "../../components/States";

const LABELS: Record<UsageDimension, string> = { key: "Key", model: "Model", day: "Day" };

interface Props {
  from: string;
  to: string;
  groups: readonly UsageDimension[];
  /** Why the range cannot be asked for. */
  problem: string | null;
  onFrom: (value: string) => void;
  onTo: (value: string) => void;
  onGroups: (groups: readonly UsageDimension[]) => void;
}

export function UsageFilters({ from, to, groups, problem, onFrom, onTo, onGroups }: Props) {
  const id = useId();
  const toggle = (dimension: UsageDimension, on: boolean) =>
    onGroups(USAGE_DIMENSIONS.filter((d) => (d === dimension ? on : groups.includes(d))));
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
        <fieldset className="field">
          <legend className="field-label">Group rows by</legend>
          <div className="checkbox-row">
            {USAGE_DIMENSIONS.map((d) => (
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
