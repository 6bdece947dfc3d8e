/** A key's state: active, inactive (switched off) or expired. */
import type { Key } from "../api/types";

export type KeyState = "active" | "inactive" | "expired";

export function keyState(key: Pick<Key, "is_active" | "expires_at">, now: number = Date.now()): KeyState {
  if (!key.is_active) return "inactive";
  if (key.expires_at && Date.parse(key.expires_at) <= now) return "expired";
  return "active";
}

const LABELS: Record<KeyState, string> = { active: "Active", inactive: "Inactive", expired: "Expired" };

export function KeyStatus({ keyData }: { keyData: Pick<Key, "is_active" | "expires_at"> }) {
  const state = keyState(keyData);
  return (
    <span className={`badge badge-${state}`}>
      <span className="badge-dot" aria-hidden="true" />
      {LABELS[state]}
    </span>
  );
}
