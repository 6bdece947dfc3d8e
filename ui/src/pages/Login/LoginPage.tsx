/**
 * Sign-in with the admin password (`ADMIN_PASSWORD` of the server). The password is tried on
 * `GET /api/settings`; only an accepted one is kept, in this tab's `sessionStorage`.
 */
import { useState, type FormEvent } from "react";
import { ApiError, createClient, describeError, type ClientOptions } from "../../api/client";
import { Icon } from "../../components/Icon";
import { Logo } from "../../components/Shell";
import { useTitle } from "../../router";

interface LoginPageProps {
  onSignedIn: (password: string) => void;
  /** Why the user is here again (signed out after a 401). */
  notice?: string | null;
  clientOptions?: Omit<ClientOptions, "onUnauthorized">;
}

export function LoginPage({ onSignedIn, notice, clientOptions }: LoginPageProps) {
  useTitle("Sign in");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!password) return;
    setBusy(true);
    setError(undefined);
    try {
      await createClient(password, clientOptions).getSettings();
      onSignedIn(password);
    } catch (e) {
      setError(e);
      setBusy(false);
    }
  };

  const message =
    error instanceof ApiError && error.kind === "unauthorized"
      ? "Wrong password. Use the ADMIN_PASSWORD the server was started with."
      : error !== undefined
        ? describeError(error)
        : null;

  return (
    <div className="login">
      <form className="login-card" onSubmit={submit} aria-labelledby="login-title">
        <Logo />
        <h1 id="login-title">Sign in</h1>
        <p className="muted">Manage API keys, quotas and upstreams of this llm-quota gateway.</p>
        {notice && !message && (
          <p className="notice" role="status">
            <Icon name="info" /> {notice}
          </p>
        )}
        <label className="field">
          <span className="field-label">Admin password</span>
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            autoFocus
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
            aria-invalid={message ? true : undefined}
            aria-describedby={message ? "login-error" : "login-hint"}
          />
        </label>
        {message ? (
          <p className="error-note" id="login-error" role="alert">
            <Icon name="alert" /> <span>{message}</span>
          </p>
        ) : (
          <p className="field-hint" id="login-hint">
            <Icon name="lock" size={13} /> Kept for this browser tab only, until you sign out or close it.
          </p>
        )}
        <button type="submit" className="btn btn-primary btn-block" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </div>
  );
}
