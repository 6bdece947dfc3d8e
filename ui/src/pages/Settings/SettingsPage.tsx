/**
 * Runtime overrides of the configuration: the Ollama URLs and the default model. Each says
 * whether it comes from the configuration or is an override stored in the database, and an
 * override can be reset to the configured value.
 */
import { useClient, useResource } from "../../api/context";
import type { Settings } from "../../api/types";
import { PageHeader } from "../../components/PageHeader";
import { ErrorState, Spinner } from "../../components/States";
import { Time } from "../../components/Time";
import { useTitle } from "../../router";
import { DefaultModelCard } from "./DefaultModelCard";
import { OllamaUrlsCard } from "./OllamaUrlsCard";

export function SettingsPage() {
  useTitle("Settings");
  const client = useClient();
  const settings = useResource(() => client.getSettings(), [client]);

  return (
    <>
      <PageHeader
        title="Settings"
        description="Changes apply at once and are stored in the database, overriding the configuration (environment and YAML) until reset."
      />
      {settings.error !== undefined && !settings.data && <ErrorState error={settings.error} what="the settings" onRetry={() => void settings.reload()} />}
      {!settings.data && settings.loading && <Spinner label="Loading the settings…" />}
      {settings.data && <SettingsCards settings={settings.data} onSaved={settings.setData} />}
    </>
  );
}

function SettingsCards({ settings, onSaved }: { settings: Settings; onSaved: (s: Settings) => void }) {
  return (
    <div className="stack">
      <OllamaUrlsCard settings={settings} onSaved={onSaved} />
      <DefaultModelCard settings={settings} onSaved={onSaved} />
      {settings.updated_at && (
        <p className="muted small">
          Last override written <Time value={settings.updated_at} relative />.
        </p>
      )}
    </div>
  );
}

export function SourceBadge({ override }: { override: boolean }) {
  return override ? (
    <span className="badge badge-override" title="Stored in the database; overrides the configuration">
      Override
    </span>
  ) : (
    <span className="badge badge-config" title="From the environment, .env or the YAML configuration">
      From configuration
    </span>
  );
}
