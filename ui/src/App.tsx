/**
 * The app: the sign-in page until a password is accepted, then the signed-in shell with the
 * page the path names. A 401 from any call signs out (the password changed or was wrong).
 */
import { useCallback, useMemo, useState } from "react";
import { createClient, type ClientOptions } from "./api/client";
import { ClientContext } from "./api/context";
import { Shell } from "./components/Shell";
import { ToastProvider } from "./components/Toast";
import { AuditPage } from "./pages/Audit/AuditPage";
import { ConnectPage } from "./pages/Connect/ConnectPage";
import { KeyDetailPage } from "./pages/KeyDetail/KeyDetailPage";
import { KeysPage } from "./pages/Keys/KeysPage";
import { LoginPage } from "./pages/Login/LoginPage";
import { NotFoundPage } from "./pages/NotFound/NotFoundPage";
import { SettingsPage } from "./pages/Settings/SettingsPage";
import { TeamDetailPage } from "./pages/TeamDetail/TeamDetailPage";
import { TeamsPage } from "./pages/Teams/TeamsPage";
import { UpstreamsPage } from "./pages/Upstreams/UpstreamsPage";
import { UsagePage } from "./pages/Usage/UsagePage";
import { match, usePath } from "./router";
import { clearPassword, loadPassword, savePassword } from "./session";

export function App({ clientOptions }: { clientOptions?: Omit<ClientOptions, "onUnauthorized"> } = {}) {
  const [password, setPassword] = useState<string | null>(() => loadPassword());
  const [notice, setNotice] = useState<string | null>(null);

  const signOut = useCallback((why: string | null = null) => {
    clearPassword();
    setPassword(null);
    setNotice(why);
  }, []);

  const client = useMemo(
    () =>
      password === null
        ? null
        : createClient(password, {
            ...clientOptions,
            onUnauthorized: () => signOut("The admin password is no longer accepted. Sign in again."),
          }),
    [password, clientOptions, signOut],
  );

  if (client === null) {
    return (
      <LoginPage
        notice={notice}
        clientOptions={clientOptions}
        onSignedIn={(accepted) => {
          savePassword(accepted);
          setNotice(null);
          setPassword(accepted);
        }}
      />
    );
  }

  return (
    <ClientContext.Provider value={client}>
      <ToastProvider>
        <Shell onSignOut={() => signOut(null)}>
          <Page />
        </Shell>
      </ToastProvider>
    </ClientContext.Provider>
  );
}

function Page() {
  const route = match(usePath());
  switch (route.page) {
    case "keys":
      return <KeysPage />;
    case "key":
      return <KeyDetailPage key={route.id} id={route.id} />;
    case "teams":
      return <TeamsPage />;
    case "team":
      return <TeamDetailPage key={route.id} id={route.id} />;
    case "usage":
      return <UsagePage />;
    case "audit":
      return <AuditPage />;
    case "settings":
      return <SettingsPage />;
    case "upstreams":
      return <UpstreamsPage />;
    case "connect":
      return <ConnectPage />;
    case "not-found":
      return <NotFoundPage />;
  }
}
