/** The model used when a request names none, picked from the upstreams' live model list. */
import { useState, type FormEvent } from "react";
import { describeError } from "../../api/client";
import { useClient, useResource } from "../../api/context";
import type { OllamaModel, Settings } from "../../api/types";
import { ErrorNote } from "../../components/States";
import { useToast } from "../../components/Toast";
import { formatBytes } from "../../format";
import { SourceBadge } from "./SettingsPage";

export function DefaultModelCard({ settings, onSaved }: { settings: Settings; onSaved: (s: Settings) => void }) {
  const client = useClient();
  const notify = useToast();
  const models = useResource<OllamaModel[]>(() => client.listModels(), [client]);
  const [model, setModel] = useState(settings.default_model);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(undefined);
  const names = (models.data ?? []).map((m) => m.name);
  // Ollama lists `llama3` as `llama3:latest`; both name the same model.
  const listed = (name: string) => (names.includes(name) ? name : names.includes(`${name}:latest`) ? `${name}:latest` : null);
  const selected = listed(model) ?? model;
  const missing = models.data !== undefined && listed(model) === null;
  const same = (a: string, b: string) => a.trim() === b.trim() || a.trim() === `${b.trim()}:latest` || b.trim() === `${a.trim()}:latest`;

  const run = async (body: { default_model: string | null }, message: string) => {
    setBusy(true);
    setFailure(undefined);
    try {
      const saved = await client.updateSettings(body);
      onSaved(saved);
      setModel(saved.default_model);
      notify(message);
    } catch (e) {
      setFailure(e);
    } finally {
      setBusy(false);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run({ default_model: model.trim() }, `Default model is now ${model.trim()}.`);
  };

  const describe = (m: OllamaModel) =>
    [m.name, m.details?.parameter_size, m.size ? formatBytes(m.size) : undefined].filter(Boolean).join(" · ");

  return (
    <form className="card" onSubmit={submit} aria-labelledby="model-title">
      <div className="card-head">
        <div>
          <h2 id="model-title">Default model</h2>
          <p className="muted">Used when a request names no model.</p>
        </div>
        <SourceBadge override={settings.overrides.default_model} />
      </div>
      <label className="field">
        <span className="field-label">Model</span>
        {models.data && models.data.length > 0 ? (
          <select value={selected} onChange={(e) => setModel(e.target.value)} name="default_model">
            {missing && <option value={model}>{model} (not on any upstream)</option>}
            {models.data.map((m) => (
              <option key={m.name} value={m.name}>
                {describe(m)}
              </option>
            ))}
          </select>
        ) : (
          <input value={model} onChange={(e) => setModel(e.target.value)} name="default_model" spellCheck={false} />
        )}
      </label>
      {models.loading && !models.data && <p className="field-hint">Loading the upstreams' models…</p>}
      {models.error !== undefined && (
        <p className="field-hint warn">No upstream answered with its model list ({describeError(models.error)}); type the model name.</p>
      )}
      {missing && <p className="field-hint warn">No upstream lists this model right now.</p>}
      {settings.overrides.default_model && (
        <p className="field-hint">
          Configured value: <code>{settings.configured.default_model}</code>
        </p>
      )}
      {failure !== undefined && <ErrorNote>{describeError(failure)}</ErrorNote>}
      <div className="card-actions">
        {settings.overrides.default_model && (
          <button type="button" className="btn btn-secondary" disabled={busy} onClick={() => void run({ default_model: null }, "Default model reset to the configuration.")}>
            Reset to configuration
          </button>
        )}
        <button type="submit" className="btn btn-primary" disabled={busy || !model.trim() || same(model, settings.default_model)}>
          {busy ? "Saving…" : "Save model"}
        </button>
      </div>
    </form>
  );
}
