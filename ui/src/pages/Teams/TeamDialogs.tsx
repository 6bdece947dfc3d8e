/**
 * Creates a team, or edits one (sending only what changed). The form is checked before the API
 * is called; the API's own refusals (a name in use: 409, a bad value: 422 naming the field)
 * stay inside the dialog.
 */
import { useId, useState, type FormEvent } from "react";
import { describeError } from "../../api/client";
import { useClient } from "../../api/context";
import type { Team } from "../../api/types";
import { Dialog } from "../../components/Dialog";
import { ErrorNote } from "../../components/States";
import { TeamFormFields } from "./TeamFormFields";
import {
  createTeamBody,
  emptyTeamForm,
  parseTeamForm,
  teamFormOf,
  teamUpdateBody,
  type ParsedTeamForm,
  type TeamFormErrors,
  type TeamFormValues,
} from "./teamForm";

export function CreateTeamDialog({ onClose, onCreated }: { onClose: () => void; onCreated: (team: Team) => void }) {
  const client = useClient();
  return (
    <TeamFormDialog
      title="New team"
      submitLabel="Create team"
      busyLabel="Creating…"
      initial={emptyTeamForm}
      onClose={onClose}
      save={async (parsed) => onCreated(await client.createTeam(createTeamBody(parsed)))}
    />
  );
}

export function EditTeamDialog({ team, onClose, onSaved }: { team: Team; onClose: () => void; onSaved: (team: Team) => void }) {
  const client = useClient();
  return (
    <TeamFormDialog
      title={`Edit “${team.name}”`}
      submitLabel="Save changes"
      busyLabel="Saving…"
      initial={() => teamFormOf(team)}
      onClose={onClose}
      save={async (parsed) => {
        const body = teamUpdateBody(team, parsed);
        if (!body) return onClose();
        onSaved(await client.updateTeam(team.id, body));
      }}
    />
  );
}

function TeamFormDialog({
  title,
  submitLabel,
  busyLabel,
  initial,
  onClose,
  save,
}: {
  title: string;
  submitLabel: string;
  busyLabel: string;
  initial: () => TeamFormValues;
  onClose: () => void;
  /** Sends the form; a throw is shown in the dialog. */
  save: (parsed: ParsedTeamForm) => Promise<void>;
}) {
  const formId = useId();
  const [values, setValues] = useState(initial);
  const [errors, setErrors] = useState<TeamFormErrors>({});
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(undefined);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const { parsed, errors: found } = parseTeamForm(values);
    setErrors(found);
    if (!parsed) return;
    setBusy(true);
    setFailure(undefined);
    try {
      await save(parsed);
    } catch (e) {
      setFailure(e);
      setBusy(false);
    }
  };

  return (
    <Dialog
      title={title}
      onClose={onClose}
      size="large"
      footer={
        <>
          <button type="button" className="btn btn-secondary" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" form={formId} className="btn btn-primary" disabled={busy}>
            {busy ? busyLabel : submitLabel}
          </button>
        </>
      }
    >
      <form id={formId} onSubmit={submit} noValidate>
        <TeamFormFields values={values} errors={errors} onChange={setValues} />
        {failure !== undefined && <ErrorNote>{describeError(failure)}</ErrorNote>}
      </form>
    </Dialog>
  );
}
