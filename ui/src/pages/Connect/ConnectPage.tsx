/** How key holders reach the proxy: its URLs, ready-to-copy examples, and the routes it serves. */
import { useState } from "react";
import { useClient, useResource } from "../../api/context";
import type { ProxyInfo } from "../../api/types";
import { CodeBlock } from "../../components/CodeBlock";
import { CopyButton } from "../../components/CopyButton";
import { PageHeader } from "../../components/PageHeader";
import { ErrorState, Spinner } from "../../components/States";
import { useTitle } from "../../router";

const TABS = [
  { id: "curl", label: "curl", language: "Shell" },
  { id: "ollama_python", label: "Python · ollama", language: "Python" },
  { id: "openai_python", label: "Python · openai", language: "Python" },
] as const;

export function ConnectPage() {
  useTitle("Connect");
  const client = useClient();
  const info = useResource(() => client.proxyInfo(), [client]);
  return (
    <>
      <PageHeader title="Connect" description="Give a key holder these details. Every call needs the key as a Bearer token." />
      {info.error !== undefined && !info.data && <ErrorState error={info.error} what="the connection details" onRetry={() => void info.reload()} />}
      {!info.data && info.loading && <Spinner />}
      {info.data && <ConnectDetails info={info.data} />}
    </>
  );
}

function ConnectDetails({ info }: { info: ProxyInfo }) {
  const [tab, setTab] = useState<(typeof TABS)[number]["id"]>("curl");
  const current = TABS.find((t) => t.id === tab) ?? TABS[0];
  const focusTab = (index: number) => {
    const next = TABS[(index + TABS.length) % TABS.length];
    setTab(next.id);
    document.getElementById(`tab-${next.id}`)?.focus();
  };
  return (
    <div className="stack">
      <div className="connect-grid">
        <Endpoint label="Ollama API base URL" value={info.proxy_url} hint="For Ollama clients (ollama-python, Open WebUI, …)." />
        <Endpoint label="OpenAI-compatible base URL" value={info.openai_base_url} hint="For OpenAI SDKs and tools that take a base URL." />
        <Endpoint label="Default model" value={info.default_model} hint="Used when a request names no model." />
      </div>

      <section className="card">
        <div className="card-head">
          <div>
            <h2>Examples</h2>
            <p className="muted">
              Each reads the key from <code>LLM_QUOTA_API_KEY</code>: <code>export LLM_QUOTA_API_KEY=sk-…</code>
            </p>
          </div>
        </div>
        <div className="tabs" role="tablist" aria-label="Example language">
          {TABS.map((t, i) => (
            <button
              key={t.id}
              id={`tab-${t.id}`}
              role="tab"
              type="button"
              aria-selected={t.id === tab}
              aria-controls="example-panel"
              tabIndex={t.id === tab ? 0 : -1}
              className={t.id === tab ? "tab tab-active" : "tab"}
              onClick={() => setTab(t.id)}
              onKeyDown={(e) => {
                if (e.key === "ArrowRight") focusTab(i + 1);
                if (e.key === "ArrowLeft") focusTab(i - 1);
              }}
            >
              {t.label}
            </button>
          ))}
        </div>
        <div id="example-panel" role="tabpanel" aria-labelledby={`tab-${current.id}`}>
          <CodeBlock code={info.examples[current.id]} label={`${current.label} example`} />
        </div>
      </section>

      <section className="card card-flush">
        <div className="card-head card-head-padded">
          <h2>Routes</h2>
          <span className="muted small">Counted routes use the key's token and request limits.</span>
        </div>
        <div className="table-wrap">
          <table className="table table-compact">
            <thead>
              <tr>
                <th scope="col">Method</th>
                <th scope="col">Path</th>
                <th scope="col">What it does</th>
                <th scope="col">Quota</th>
              </tr>
            </thead>
            <tbody>
              {info.endpoints.map((e) => (
                <tr key={`${e.method} ${e.path}`}>
                  <td data-label="Method">
                    <span className={`method method-${e.method.toLowerCase()}`}>{e.method}</span>
                  </td>
                  <td data-label="Path" className="mono">
                    {e.path}
                  </td>
                  <td data-label="What it does">{e.description}</td>
                  <td data-label="Quota">{e.counts_toward_quota ? <span className="badge badge-counted">Counted</span> : <span className="muted">Free</span>}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
    </div>
  );
}

function Endpoint({ label, value, hint }: { label: string; value: string; hint: string }) {
  return (
    <div className="card endpoint-card">
      <div className="field-label">{label}</div>
      <div className="endpoint-value">
        <code className="mono">{value}</code>
        <CopyButton text={value} className="icon-button" ariaLabel={`Copy ${label}`} iconOnly />
      </div>
      <p className="muted small">{hint}</p>
    </div>
  );
}
