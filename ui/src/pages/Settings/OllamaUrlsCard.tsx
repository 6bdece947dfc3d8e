/** The Ollama upstream URLs: edit the list, save it as an override, or reset to the configuration. */
import { useState, type FormEvent } from "react";
import { describeError } from "../../api/client";
import { useClient } from "../../api/context";
import type { Settings } from "../../api/types";
import { Icon } from "../../components/Icon";
import { ErrorNote } from "../../components/States";
import { useToast } from "../../components/Toast";
import { SourceBadge } from "./SettingsPage";

export function OllamaUrlsCard({ settings, onSaved }: { settings: Settings; onSaved: (s: Settings) => void }) {
  const client = useClient();
  const notify = useToast();
  const [urls, setUrls] = useState<string[]>(settings.ollama_urls);
  const [busy, setBusy] = useState(false);
  const [failure, setFailure] = useState<unknown>(undefined);
  const cleaned = urls.map((u) => u.trim()).filter(Boolean);
  const dirty = JSON.stringify(cleaned) !== JSON.stringify(settings.ollama_urls);

  const run = async (body: { ollama_urls: string[] | null }, message: string) => {
    setBusy(true);
    setFailure(undefined);
    try {
      const saved = await client.updateSettings(body);
      onSaved(saved);
      setUrls(saved.ollama_urls);
      notify(message);
    } catch (e) {
      setFailure(e);
    } finally {
      setBusy(false);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void run({ ollama_urls: cleaned }, "Ollama URLs saved.");
  };

  return (
    <form className="card" onSubmit={submit} aria-labelledby="urls-title">
      <div className="card-head">
        <div>
          <h2 id="urls-title">Ollama URLs</h2>
          <p className="muted">Where the proxy sends requests. With several, requests go to a healthy one that has the model.</p>
        </div>
        <SourceBadge override={settings.overrides.ollama_urls} />
      </div>
      <ul className="url-list">
        {urls.map((url, i) => (
          <li key={i}>
            <input
              value={url}
              aria-label={`Ollama URL ${i + 1}`}
              placeholder="http://localhost:11434"
              spellCheck={false}
              onChange={(e) => setUrls(urls.map((u, j) => (j === i ? e.target.value : u)))}
            />
            <button
              type="button"
              className="icon-button danger-hover"
              aria-label={`Remove ${url || `URL ${i + 1}`}`}
              title="Remove"
              disabled={urls.length === 1}
              onClick={() => setUrls(urls.filter((_, j) => j !== i))}
            >
              <Icon name="trash" />
            </button>
          </li>
        ))}
      </ul>
      <button type="button" className="btn btn-ghost btn-small" onClick={() => setUrls([...urls, ""])}>
        <Icon name="plus" /> Add URL
      </button>
      {settings.overrides.ollama_urls && (
        <p className="field-hint">
          Configured value: <code>{settings.configured.ollama_urls.join(", ")}</code>
        </p>
      )}
      {failure !== undefined && <ErrorNote>{describeError(failure)}</ErrorNote>}
      <div className="card-actions">
        {settings.overrides.ollama_urls && (
          <button type="button" className="btn btn-secondary" disabled={busy} onClick={() => void run({ ollama_urls: null }, "Ollama URLs reset to the configuration.")}>
            Reset to configuration
          </button>
        )}
        <button type="submit" className="btn btn-primary" disabled={busy || !dirty || cleaned.length === 0}>
          {busy ? "Saving…" : "Save URLs"}
        </button>
      </div>
    </form>
  );
}
