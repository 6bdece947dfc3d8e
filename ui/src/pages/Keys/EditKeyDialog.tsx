/** Edits a key's name, limits, expiry and models; sends only what changed. */
import { useState, type FormEvent } from "react";
import { describeError } from "../../api/client";
import { useClient } from "../../api/context";
import type { Key } from "../../api/types";
import { Dialog } from "../../components/Dialog";
import { ErrorNote } from "../../components/States";
import { KeyFormFields } from "./KeyFormFields";
import { formOf, parseForm, updateBodies, type KeyFormErrors } from "./keyForm";

export function EditKeyDialog({ keyData, onClose, onSaved }: { keyData: Key; onClose: () => void; onSaved: (key: Key) => void }) {
  const client = useClient();
  const [values, setValues] = useState(() => formOf(keyData));
  const [errors, setErrors] = useState<KeyFormErrors>({});
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(undefined);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { parsed, errors: found } = parseForm(values);
    setErrors(found);
    if (!parsed) return;
    const bodies = updateBodies(keyData, parsed);
    if (!bodies.key && !bodies.quota) {
      onClose();
      return;
    }
    setBusy(true);
    setFailure(undefined);
    try {
      let latest = keyData;
      if (bodies.key) latest = await client.updateKey(keyData.id, bodies.key);
      if (bodies.quota) latest = await client.updateQuota(keyData.id, bodies.quota);
      onSaved(latest);
    } catch (e) {
      setFailure(e);
      setBusy(false);
    }
  };

  return (
    <Dialog
      title={`Edit “${keyData.name}”`}
      onClose={onClose}
      size="large"
      footer={
        <>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form="edit-key-form" className="btn btn-primary" disabled={busy}>
            {busy ? "Saving…" : "Save changes"}
          </button>
        </>
      }
    >
      <form id="edit-key-form" onSubmit={submit} noValidate>
        <KeyFormFields values={values} errors={errors} onChange={setValues} />
        {failure !== undefined && <ErrorNote>{describeError(failure)}</ErrorNote>}
      </form>
    </Dialog>
  );
}
