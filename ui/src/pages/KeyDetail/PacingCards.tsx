/** The key's (or team's) pacing: requests and tokens in any 60 seconds, requests at once, and its priority. */
import { PACING, PRIORITY_DEFAULT, PRIORITY_MAX, pacingOf, type Budgeted, type PacingField } from "../../api/types";
import { formatNumber } from "../../format";

/** A team's pacing counts all its keys together. */
const TEAM_HINTS: Record<PacingField, string> = {
  requests_per_minute: "In any 60 seconds, all its keys together",
  tokens_per_minute: "In any 60 seconds, all its keys together",
  max_parallel_requests: "At once per instance, all its keys together",
};

export function PacingCards({ budget, who = "key" }: { budget: Omit<Budgeted, "usage">; who?: "key" | "team" }) {
  const pacing = pacingOf(budget);
  return (
    <div className="budget-grid">
      {PACING.map((limit) => {
        const value = pacing[limit.field];
        return (
          <section className="budget" key={limit.field} aria-label={limit.label}>
            <h3 className="budget-head">{limit.label}</h3>
            <div className="budget-value">
              {value === null ? (
                <strong className="muted">No limit</strong>
              ) : (
                <>
                  <strong>{formatNumber(value)}</strong> <span className="muted">{limit.unit}</span>
                </>
              )}
            </div>
            <div className="small muted">{who === "team" ? TEAM_HINTS[limit.field] : limit.hint}</div>
          </section>
        );
      })}
      <section className="budget" aria-label="Priority">
        <h3 className="budget-head">Priority</h3>
        <div className="budget-value">
          <strong>{pacing.priority}</strong> <span className="muted">of {PRIORITY_MAX}</span>
        </div>
        <div className="small muted">
          Weight in the fair queue for busy hosts{pacing.priority === PRIORITY_DEFAULT ? " · the default" : ""}
        </div>
      </section>
    </div>
  );
}
