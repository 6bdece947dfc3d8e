/** The fields of the create and edit dialogs: name, expiry, the four limits, allowed models. */
import { useId, useState } from "react";
import { LIMITS, type OllamaModel } from "../../api/types";
import { useClient, useResource } from "../../api/context";
import { browserZone, formatNumber, parseLimit } from "../../format";
import type { KeyFormErrors, KeyFormValues } from "./keyForm";

interface Props {
  values: KeyFormValues;
  errors: KeyFormErrors;
  onChange: (values: KeyFormValues) => void;
}

export function KeyFormFields({ values, errors, onChange }: Props) {
  const id = useId();
  const set = <K extends keyof KeyFormValues>(field: K, value: KeyFormValues[K]) => onChange({ ...values, [field]: value });

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
          onChange={(e) => set("name", e.target.value)}
          placeholder="e.g. alice-laptop, ci-pipeline"
          maxLength={200}
          aria-invalid={errors.name ? true : undefined}
          aria-describedby={errors.name ? `${id}-name-error` : undefined}
        />
        {errors.name && <FieldError id={`${id}-name-error`} text={errors.name} />}
      </div>

      <fieldset className="field">
        <legend className="field-label">Limits</legend>
        <p className="field-hint">Leave a field empty for no limit. Days and months follow the server's time zone.</p>
        <div className="limits-grid">
          {LIMITS.map((limit) => {
            const raw = values.limits[limit.field];
            const parsed = parseLimit(raw);
            const error = errors[limit.field];
            return (
              <div className="field" key={limit.field}>
                <label className="field-label-small" htmlFor={`${id}-${limit.field}`}>
                  {limit.label}
                </label>
                <input
                  id={`${id}-${limit.field}`}
                  name={limit.field}
                  inputMode="numeric"
                  value={raw}
                  placeholder="No limit"
                  onChange={(e) => set("limits", { ...values.limits, [limit.field]: e.target.value })}
                  aria-invalid={error ? true : undefined}
                  aria-describedby={`${id}-${limit.field}-hint`}
                />
                <span id={`${id}-${limit.field}-hint`} className={error ? "field-error" : "field-hint"}>
                  {error ??
                    (parsed === null
                      ? "Unlimited"
                      : parsed === undefined
                        ? " "
                        : `${formatNumber(parsed)} ${limit.unit}`)}
                </span>
              </div>
            );
          })}
        </div>
      </fieldset>

      <fieldset className="field">
        <legend className="field-label">Expires</legend>
        <div className="segmented" role="radiogroup" aria-label="Expiry">
          <label>
            <input type="radio" name={`${id}-expires`} checked={values.expires === "never"} onChange={() => set("expires", "never")} />
            <span>Never</span>
          </label>
          <label>
            <input type="radio" name={`${id}-expires`} checked={values.expires === "at"} onChange={() => set("expires", "at")} />
            <span>On a date</span>
          </label>
        </div>
        {values.expires === "at" && (
          <>
            <input
              type="datetime-local"
              name="expires_at"
              aria-label="Expiry date and time"
              value={values.expiresAt}
              onChange={(e) => set("expiresAt", e.target.value)}
              aria-invalid={errors.expiresAt ? true : undefined}
            />
            <span className={errors.expiresAt ? "field-error" : "field-hint"}>{errors.expiresAt ?? `In your browser's zone: ${browserZone()}.`}</span>
          </>
        )}
      </fieldset>

      <ModelsField values={values} error={errors.allowed} onChange={onChange} />
    </div>
  );
}

function FieldError({ id, text }: { id: string; text: string }) {
  return (
    <span id={id} className="field-error">
      {text}
    </span>
  );
}

function ModelsField({ values, error, onChange }: { values: KeyFormValues; error?: string; onChange: (v: KeyFormValues) => void }) {
  const id = useId();
  const client = useClient();
  const models = useResource<OllamaModel[]>(() => client.listModels(), [client]);
  const [extra, setExtra] = useState("");
  const known = (models.data ?? []).map((m) => m.name);
  const shown = [...known, ...values.allowed.filter((m) => !known.includes(m))];
  const toggle = (name: string) =>
    onChange({
      ...values,
      allowed: values.allowed.includes(name) ? values.allowed.filter((m) => m !== name) : [...values.allowed, name],
    });
  const addExtra = () => {
    const name = extra.trim();
    if (name && !values.allowed.includes(name)) onChange({ ...values, allowed: [...values.allowed, name] });
    setExtra("");
  };
  return (
    <fieldset className="field">
      <legend className="field-label">Models</legend>
      <div className="segmented" role="radiogroup" aria-label="Models">
        <label>
          <input type="radio" name={`${id}-models`} checked={values.models === "all"} onChange={() => onChange({ ...values, models: "all" })} />
          <span>All local models</span>
        </label>
        <label>
          <input type="radio" name={`${id}-models`} checked={values.models === "only"} onChange={() => onChange({ ...values, models: "only" })} />
          <span>Only these</span>
        </label>
      </div>
      {values.models === "only" && (
        <div className="model-picker">
          {models.loading && !models.data && <span className="field-hint">Loading the upstreams' models…</span>}
          {models.error !== undefined && <span className="field-hint">The upstreams' model list is unavailable; type model names below.</span>}
          {shown.length > 0 && (
            <div className="chip-list" role="group" aria-label="Allowed models">
              {shown.map((name) => (
                <label key={name} className={values.allowed.includes(name) ? "chip chip-on" : "chip"}>
                  <input type="checkbox" checked={values.allowed.includes(name)} onChange={() => toggle(name)} />
                  <span>{name}</span>
                </label>
              ))}
            </div>
          )}
          <div className="inline-add">
            <input
              value={extra}
              placeholder="Another model, e.g. gpt-oss:120b-cloud"
              aria-label="Add a model by name"
              onChange={(e) => setExtra(e.target.value)}
              onKeyDown={(e) => {
                if (e.key === "Enter") {
                  e.preventDefault();
                  addExtra();
                }
              }}
            />
            <button type="button" className="btn btn-secondary btn-small" onClick={addExtra} disabled={!extra.trim()}>
              Add
            </button>
          </div>
          <span className={error ? "field-error" : "field-hint"}>{error ?? "Cloud models must be named here to be usable."}</span>
        </div>
      )}
    </fieldset>
  );
}
