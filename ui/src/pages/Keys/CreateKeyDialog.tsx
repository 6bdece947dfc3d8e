/**
 * Creates a key, then shows its plaintext once: the API never returns it again, so the
 * dialog says so, offers a copy button, and forgets the plaintext when it closes.
 */
import { useState, type FormEvent, type ReactNode } from "react";
import { describeError } from "../../api/client";
import { useClient } from "../../api/context";
import type { CreatedKey, Key } from "../../api/types";
import { CopyButton } from "../../components/CopyButton";
import { Dialog } from "../../components/Dialog";
import { Icon } from "../../components/Icon";
import { ErrorNote } from "../../components/States";
import { KeyFormFields } from "./KeyFormFields";
import { createBody, emptyForm, parseForm, type KeyFormErrors } from "./keyForm";

interface Props {
  onClose: () => void;
  /** The new key (without its plaintext), as soon as it exists. */
  onCreated: (key: Key) => void;
  /** The team picked at first (the dialog opened from a team's page). */
  teamId?: number;
}

export function CreateKeyDialog({ onClose, onCreated, teamId }: Props) {
  const client = useClient();
  const [values, setValues] = useState(() => emptyForm(teamId ?? null));
  const [errors, setErrors] = useState<KeyFormErrors>({});
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(undefined);
  const [created, setCreated] = useState<CreatedKey | null>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { parsed, errors: found } = parseForm(values);
    setErrors(found);
    if (!parsed) return;
    setBusy(true);
    setFailure(undefined);
    try {
      const answer = await client.createKey(createBody(parsed));
      const { key: _plaintext, ...rest } = answer;
      onCreated(rest as Key);
      setCreated(answer);
    } catch (e) {
      setFailure(e);
    } finally {
      setBusy(false);
    }
  };

  if (created) {
    return <KeyCreated created={created} onClose={onClose} />;
  }

  return (
    <Dialog
      title="Create API key"
      onClose={onClose}
      size="large"
      footer={
        <>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form="create-key-form" className="btn btn-primary" disabled={busy}>
            {busy ? "Creating…" : "Create key"}
          </button>
        </>
      }
    >
      <form id="create-key-form" onSubmit={submit} noValidate>
        <KeyFormFields values={values} errors={errors} onChange={setValues} />
        {failure !== undefined && <ErrorNote>{describeError(failure)}</ErrorNote>}
      </form>
    </Dialog>
  );
}

/** The one time the plaintext is on screen: after creating a key, and after rotating its secret. */
export function KeyCreated({
  created,
  onClose,
  title = "Key created",
  lost = "If it is lost, create a new key and delete this one.",
  children,
}: {
  created: CreatedKey;
  onClose: () => void;
  title?: string;
  /** What to do when the plaintext is lost. */
  lost?: string;
  /** More to say under the key. */
  children?: ReactNode;
}) {
  return (
    <Dialog
      title={title}
      onClose={onClose}
      dismissable={false}
      initialFocus=".secret-row button"
      footer={
        <button type="button" className="btn btn-primary" onClick={onClose}>
          I have stored the key, close
        </button>
      }
    >
      <div className="warning-box" role="note">
        <Icon name="alert" size={18} />
        <div>
          <strong>Copy this key now. It will not be shown again.</strong>
          <p>llm-quota stores only a hash of it. {lost}</p>
        </div>
      </div>
      <label className="field">
        <span className="field-label">API key for “{created.name}”</span>
        <div className="secret-row">
          <input className="secret" readOnly value={created.key} aria-label="The new API key" onFocus={(e) => e.currentTarget.select()} data-testid="new-key-plaintext" />
          <CopyButton text={created.key} className="btn btn-primary" label="Copy key" />
        </div>
      </label>
      <p className="field-hint">
        Clients send it as <code>Authorization: Bearer {created.key_prefix}…</code>. The Connect page has ready-to-copy examples.
      </p>
      {children}
    </Dialog>
  );
}
