/**
 * The fields of the create and edit dialogs: name, team, the six limits (tokens, requests, GPU
 * time), pacing (per-minute limits, parallel cap, priority), expiry, allowed models, web search.
 * The limits, pacing and models fieldsets are the team form's too.
 */
import { useId, useState } from "react";
import { describeError } from "../../api/client";
import { LIMITS, PACING, PRIORITY_DEFAULT, PRIORITY_MAX, PRIORITY_MIN, isSeconds, type Limit, type OllamaModel, type Team } from "../../api/types";
import { useClient, useResource } from "../../api/context";
import { browserZone, formatDuration, formatNumber, formatSeconds, parseLimit } from "../../format";
import { parsePriority, readLimit, type BudgetFormErrors, type BudgetFormValues, type KeyFormErrors, type KeyFormValues } from "./keyForm";

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

      <TeamField value={values.team} onChange={(team) => set("team", team)} />

      <LimitsFieldset values={values} errors={errors} onChange={onChange} />

      <PacingFieldset values={values} errors={errors} onChange={onChange} who="key" />

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

      <fieldset className="field">
        <legend className="field-label">Web search</legend>
        <div className="checkbox-row">
          <label className="checkbox">
            <input type="checkbox" checked={values.webSearch} onChange={(e) => onChange({ ...values, webSearch: e.target.checked })} />
            <span>Allow Ollama's web search tools</span>
          </label>
        </div>
        <span className="field-hint">
          Ollama runs them on the host's ollama.com account (<code>/v1/responses</code>, <code>/v1/messages</code>). Without this, such requests get 403.
        </span>
      </fieldset>
    </div>
  );
}

interface BudgetProps<V extends BudgetFormValues> {
  values: V;
  errors: BudgetFormErrors;
  onChange: (values: V) => void;
}

/** The six limits: tokens, requests and GPU seconds, a day and a month each. */
export function LimitsFieldset<V extends BudgetFormValues>({ values, errors, onChange, hint }: BudgetProps<V> & { hint?: string }) {
  const id = useId();
  return (
    <fieldset className="field">
      <legend className="field-label">Limits</legend>
      <p className="field-hint">
        {hint ? `${hint} ` : ""}Leave a field empty for no limit. Days and months follow the server's time zone. GPU time is seconds on a host × its{" "}
        <code>gpu_weight</code>.
      </p>
      <div className="limits-grid">
        {LIMITS.map((limit) => (
          <LimitInput
            key={limit.field}
            id={`${id}-${limit.field}`}
            name={limit.field}
            label={limit.label}
            decimals={isSeconds(limit)}
            hint={limitHint(limit, values.limits[limit.field])}
            value={values.limits[limit.field]}
            error={errors[limit.field]}
            onChange={(text) => onChange({ ...values, limits: { ...values.limits, [limit.field]: text } })}
          />
        ))}
      </div>
    </fieldset>
  );
}

/** Requests and tokens per minute, the parallel cap, and the priority. */
export function PacingFieldset<V extends BudgetFormValues>({ values, errors, onChange, who }: BudgetProps<V> & { who: "key" | "team" }) {
  const id = useId();
  return (
    <fieldset className="field">
      <legend className="field-label">Pacing</legend>
      <p className="field-hint">
        {who === "key"
          ? "Per minute = in any 60 seconds; empty = no limit. Parallel requests count per instance, more wait in the key's queue. Priority weighs the key in the fair queue of a busy host."
          : "Per minute = in any 60 seconds, over all the team's keys; empty = no limit. Parallel requests count per instance. Priority weighs the team in the fair queue of a busy host."}
      </p>
      <div className="limits-grid">
        {PACING.map((limit) => (
          <LimitInput
            key={limit.field}
            id={`${id}-${limit.field}`}
            name={limit.field}
            label={limit.label}
            hint={countHint(limit.unit, values.pacing[limit.field])}
            value={values.pacing[limit.field]}
            error={errors[limit.field]}
            onChange={(text) => onChange({ ...values, pacing: { ...values.pacing, [limit.field]: text } })}
          />
        ))}
        <PriorityInput id={`${id}-priority`} value={values.priority} error={errors.priority} onChange={(text) => onChange({ ...values, priority: text })} />
      </div>
    </fieldset>
  );
}

/**
 * The key's team: none, or one of the teams. Hidden when the teams cannot be listed and the key
 * has none (a gateway without teams); a key's current team stays picked while the list loads.
 */
function TeamField({ value, onChange }: { value: string; onChange: (value: string) => void }) {
  const id = useId();
  const client = useClient();
  const teams = useResource<Team[]>(() => client.listTeams(), [client]);
  if (teams.error !== undefined && value === "") return null;
  const listed = teams.data ?? [];
  const known = value === "" || listed.some((t) => String(t.id) === value);
  return (
    <div className="field">
      <label className="field-label" htmlFor={`${id}-team`}>
        Team
      </label>
      <select
        id={`${id}-team`}
        name="team_id"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        disabled={!teams.data}
        aria-describedby={`${id}-team-hint`}
      >
        <option value="">— none —</option>
        {listed.map((t) => (
          <option key={t.id} value={String(t.id)}>
            {t.name}
          </option>
        ))}
        {!known && <option value={value}>Team {value}</option>}
      </select>
      <span id={`${id}-team-hint`} className="field-hint">
        {teams.error !== undefined
          ? `The teams could not be listed (${describeError(teams.error)}).`
          : teams.data && teams.data.length === 0
            ? "No team yet; the Teams page creates them."
            : "A team's limits count the requests of all its keys together, on top of each key's own limits."}
      </span>
    </div>
  );
}

/** What a limit's hint reads back while it is typed: "Unlimited", "1,500,000 tokens", "3,600 GPU seconds (1 h)". */
function limitHint(limit: Limit, text: string): string {
  if (!isSeconds(limit)) return countHint(limit.unit, text);
  const read = readLimit(limit, text);
  if ("error" in read) return " ";
  if (read.value === null) return "Unlimited";
  // The exact seconds, so decimals are seen as read; the duration for the size of it.
  return `${formatSeconds(read.value, 3)} GPU seconds${read.value >= 60 ? ` (${formatDuration(read.value)})` : ""}`;
}

/** The same for a whole count (tokens, requests); a blank when it does not read (yet). */
function countHint(unit: string, text: string): string {
  const parsed = parseLimit(text);
  return parsed === null ? "Unlimited" : parsed === undefined ? " " : `${formatNumber(parsed)} ${unit}`;
}

/** A limit typed as text (`1,000`, `1.5M`, GPU seconds `1,800.5`); empty = unlimited. */
function LimitInput({
  id,
  name,
  label,
  hint,
  decimals = false,
  value,
  error,
  onChange,
}: {
  id: string;
  name: string;
  label: string;
  /** Under the input when there is no error: the value as read. */
  hint: string;
  /** Whether decimals are allowed (a decimal point on touch keyboards). */
  decimals?: boolean;
  value: string;
  error?: string;
  onChange: (value: string) => void;
}) {
  return (
    <div className="field">
      <label className="field-label-small" htmlFor={id}>
        {label}
      </label>
      <input
        id={id}
        name={name}
        inputMode={decimals ? "decimal" : "numeric"}
        value={value}
        placeholder="No limit"
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-hint`}
      />
      <span id={`${id}-hint`} className={error ? "field-error" : "field-hint"}>
        {error ?? hint}
      </span>
    </div>
  );
}

/** The fair-queue weight, 1 to 10. */
function PriorityInput({ id, value, error, onChange }: { id: string; value: string; error?: string; onChange: (value: string) => void }) {
  const parsed = parsePriority(value);
  return (
    <div className="field">
      <label className="field-label-small" htmlFor={id}>
        Priority
      </label>
      <input
        id={id}
        name="priority"
        type="number"
        inputMode="numeric"
        min={PRIORITY_MIN}
        max={PRIORITY_MAX}
        step={1}
        value={value}
        placeholder={String(PRIORITY_DEFAULT)}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={`${id}-hint`}
      />
      <span id={`${id}-hint`} className={error ? "field-error" : "field-hint"}>
        {error ??
          (parsed === undefined
            ? " "
            : `${parsed} of ${PRIORITY_MAX}${parsed === PRIORITY_DEFAULT ? " (the default)" : ""}`)}
      </span>
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

/** All local models, or only the ones picked (from the upstreams' list, or typed). */
export function ModelsField<V extends BudgetFormValues>({ values, error, onChange }: { values: V; error?: string; onChange: (v: V) => void }) {
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
