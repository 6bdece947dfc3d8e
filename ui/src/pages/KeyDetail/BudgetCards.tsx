/**
 * The current day's and month's budget of each limit: used, left, and when it starts again. The
 * same for a key and for a team (whose usage is that of all its keys).
 */
import { LIMITS, isSeconds, limitsOf, usedOf, type Budgeted } from "../../api/types";
import { Time } from "../../components/Time";
import { UsageBar, usageLevel } from "../../components/UsageBar";
import { formatDuration, formatNumber } from "../../format";

export function BudgetCards({ budget }: { budget: Budgeted }) {
  const limits = limitsOf(budget);
  return (
    <div className="budget-grid">
      {LIMITS.map((limit) => {
        const used = usedOf(budget, limit);
        const max = limits[limit.field];
        const period = budget.usage[limit.period];
        const left = max === null ? null : Math.max(0, max - used);
        const level = usageLevel(used, max);
        const seconds = isSeconds(limit);
        // GPU time reads as a duration ("59 m 48 s left"), a count with its unit ("79,937 tokens left").
        const amount = seconds ? formatDuration : formatNumber;
        return (
          <section className={`budget budget-${level}`} key={limit.field} aria-label={limit.short}>
            <h3 className="budget-head" title={`Period ${period.period}`}>
              {limit.short}
            </h3>
            <div className="budget-value">
              {max === null ? (
                <>
                  <strong>{amount(used)}</strong> <span className="muted">used · no limit</span>
                </>
              ) : (
                <>
                  <strong>{amount(left ?? 0)}</strong> <span className="muted">{seconds ? "left" : `${limit.unit} left`}</span>
                </>
              )}
            </div>
            <UsageBar used={used} limit={max} label={`${limit.unit} ${limit.period === "day" ? "today" : "this month"}`} seconds={seconds} />
            <div className="budget-reset small muted">
              {level === "full" ? "Limit reached · " : ""}Resets <Time value={period.resets_at} relative />
            </div>
          </section>
        );
      })}
    </div>
  );
}
