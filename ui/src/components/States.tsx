/** Loading, empty and error states, the same on every page. */
import type { ReactNode } from "react";
import { ApiError, describeError } from "../api/client";
import { Icon, type IconName } from "./Icon";

export function Spinner({ label = "Loading…" }: { label?: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </div>
  );
}

/** Grey placeholder rows while a table loads. */
export function SkeletonRows({ rows = 3, columns }: { rows?: number; columns: number }) {
  return (
    <>
      {Array.from({ length: rows }, (_, r) => (
        <tr key={r} className="skeleton-row" aria-hidden="true">
          {Array.from({ length: columns }, (_, c) => (
            <td key={c}>
              <span className="skeleton" />
            </td>
          ))}
        </tr>
      ))}
    </>
  );
}

export function EmptyState({
  icon,
  title,
  children,
  action,
}: {
  icon: IconName;
  title: string;
  children?: ReactNode;
  action?: ReactNode;
}) {
  return (
    <div className="empty-state">
      <div className="empty-icon">
        <Icon name={icon} size={22} />
      </div>
      <h3>{title}</h3>
      {children && <p>{children}</p>}
      {action}
    </div>
  );
}

/** A failed load, with what it means and a way to try again. */
export function ErrorState({ error, onRetry, what }: { error: unknown; onRetry?: () => void; what: string }) {
  const unreachable = error instanceof ApiError && error.kind === "unreachable";
  return (
    <div className="error-state" role="alert">
      <div className="error-icon">
        <Icon name="alert" size={20} />
      </div>
      <div>
        <h3>{unreachable ? "The admin API is unreachable" : `Could not load ${what}`}</h3>
        <p>{describeError(error)}</p>
        {onRetry && (
          <button type="button" className="btn btn-secondary btn-small" onClick={onRetry}>
            <Icon name="refresh" /> Try again
          </button>
        )}
      </div>
    </div>
  );
}

/** An inline error under a form. */
export function ErrorNote({ children }: { children: ReactNode }) {
  return (
    <p className="error-note" role="alert">
      <Icon name="alert" /> <span>{children}</span>
    </p>
  );
}
