/**
 * The fields of the team dialogs: name, description, and the budget the team's keys share (the
 * key form's limits, pacing and models fieldsets).
 */
import { useId } from "react";
import { LimitsFieldset, ModelsField, PacingFieldset } from "../Keys/KeyFormFields";
import { TEAM_NAME_MAX, type TeamFormErrors, type TeamFormValues } from "./teamForm";

interface Props {
  values: TeamFormValues;
  errors: TeamFormErrors;
  onChange: (values: TeamFormValues) => void;
}

export function TeamFormFields({ values, errors, onChange }: Props) {
  const id = useId();
  return (
    <div className="form-grid">
      <div className="field">
        <label className="field-label" htmlFor={`${id}-name`}>
          Name
        </label>
        <input
          id={`${id}-name`}
          name="name"
          value={values.name}
          onChange={(e) => onChange({ ...values, name: e.target.value })}
          placeholder="e.g. data-science, support-bots"
          maxLength={TEAM_NAME_MAX}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={errors.name ? `${id}-name-error` : undefined}
        />
        {errors.name && (
          <span id={`${id}-name-error`} className="field-error">
            {errors.name}
          </span>
        )}
      </div>

      <div className="field">
        <label className="field-label" htmlFor={`${id}-description`}>
          Description <span className="muted">(optional)</span>
        </label>
        <textarea
          id={`${id}-description`}
          name="description"
          className="textarea"
          rows={2}
          value={values.description}
          onChange={(e) => onChange({ ...values, description: e.target.value })}
          placeholder="Who the team is, whom to ask about its budget"
        />
      </div>

      <LimitsFieldset
        values={values}
        errors={errors}
        onChange={onChange}
        hint="The team's limits count the requests of all its keys together; each key keeps its own limits as well."
      />

      <PacingFieldset values={values} errors={errors} onChange={onChange} who="team" />

      <ModelsField values={values} error={errors.allowed} onChange={onChange} />
    </div>
  );
}
