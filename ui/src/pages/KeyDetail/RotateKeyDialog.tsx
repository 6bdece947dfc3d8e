/**
 * Rotates a key's secret: a new plaintext for the same key (id, name, limits and usage stay),
 * with an optional grace period for the old one. The new plaintext is then shown once, in the
 * same dialog as after creating a key.
 */
import { useId, useState, type FormEvent } from "react";
import { describeError } from "../../api/client";
import { useClient } from "../../api/context";
import type { Key, RotatedKey } from "../../api/types";
import { Dialog } from "../../components/Dialog";
import { ErrorNote } from "../../components/States";
import { Time } from "../../components/Time";
import { KeyCreated } from "../Keys/CreateKeyDialog";

/** How long the old secret keeps working (`grace_seconds`). */
export const GRACE_PERIODS = [
  { seconds: 0, label: "Immediately" },
  { seconds: 3600, label: "In 1 hour" },
  { seconds: 86_400, label: "In 24 hours" },
  { seconds: 604_800, label: "In 7 days" },
] as const;

interface Props {
  keyData: Key;
  onClose: () => void;
  /** The key with its new prefix (without the plaintext) and until when the old secret works, as soon as it is rotated. */
  onRotated: (key: Key, oldSecretValidUntil: string | null) => void;
}

export function RotateKeyDialog({ keyData, onClose, onRotated }: Props) {
  const client = useClient();
  const id = useId();
  const [grace, setGrace] = useState<number>(0);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(undefined);
  const [rotated, setRotated] = useState<RotatedKey | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setFailure(undefined);
    try {
      const answer = await client.rotateKey(keyData.id, { grace_seconds: grace });
      const { key: _plaintext, old_secret_valid_until, ...rest } = answer;
      onRotated(rest, old_secret_valid_until ?? null);
      setRotated(answer);
    } catch (e) {
      setFailure(e);
    } finally {
      setBusy(false);
    }
  };

  if (rotated) {
    return (
      <KeyCreated created={rotated} onClose={onClose} title="Secret rotated" lost="If it is lost, rotate the key again.">
        <p className="notice" data-testid="rotated-old-secret">
          {rotated.old_secret_valid_until ? (
            <span>
              The old secret works until <Time value={rotated.old_secret_valid_until} relative />, then it is refused.
            </span>
          ) : (
            <span>The old secret no longer works.</span>
          )}
        </p>
      </KeyCreated>
    );
  }

  const period = GRACE_PERIODS.find((p) => p.seconds === grace) ?? GRACE_PERIODS[0];

  return (
    <Dialog
      title={`Rotate the secret of “${keyData.name}”`}
      onClose={onClose}
      size="small"
      footer={
        <>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form={`${id}-form`} className="btn btn-primary" disabled={busy}>
            {busy ? "Rotating…" : "Rotate secret"}
          </button>
        </>
      }
    >
      <form id={`${id}-form`} onSubmit={submit} noValidate className="form-grid">
        <p>
          The key gets a new secret and keeps its id, name, limits and usage. Its holders must switch to the new secret.
        </p>
        <div className="field">
          <label className="field-label" htmlFor={`${id}-grace`}>
            Old secret stops working
          </label>
          <select id={`${id}-grace`} value={grace} onChange={(e) => setGrace(Number(e.target.value))}>
            {GRACE_PERIODS.map((p) => (
              <option key={p.seconds} value={p.seconds}>
                {p.label}
              </option>
            ))}
          </select>
          <p className="field-hint">
            {grace === 0
              ? "Requests with the old secret are refused (401) as soon as you rotate."
              : `Both secrets work until then (${period.label.toLowerCase()}); after that only the new one does.`}
          </p>
        </div>
        {failure !== undefined && <ErrorNote>{describeError(failure)}</ErrorNote>}
      </form>
    </Dialog>
  );
}
