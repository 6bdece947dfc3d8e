/** The signed-in frame: the navigation (a sidebar, a top bar when narrow) and the page. */
import type { ReactNode } from "react";
import { Link, usePath } from "../router";
import { Icon, type IconName } from "./Icon";

const NAV: { to: string; label: string; icon: IconName; match: (path: string) => boolean }[] = [
  { to: "/keys", label: "API keys", icon: "key", match: (p) => p === "/" || p.startsWith("/keys") },
  { to: "/teams", label: "Teams", icon: "team", match: (p) => p.startsWith("/teams") },
  { to: "/usage", label: "Usage", icon: "chart", match: (p) => p.startsWith("/usage") },
  { to: "/audit", label: "Audit", icon: "history", match: (p) => p.startsWith("/audit") },
  { to: "/upstreams", label: "Upstreams", icon: "server", match: (p) => p.startsWith("/upstreams") },
  { to: "/settings", label: "Settings", icon: "settings", match: (p) => p.startsWith("/settings") },
  { to: "/connect", label: "Connect", icon: "plug", match: (p) => p.startsWith("/connect") },
];

export function Logo() {
  return (
    <span className="logo">
      <svg width="26" height="26" viewBox="0 0 32 32" aria-hidden="true">
        <rect width="32" height="32" rx="8" fill="var(--accent)" />
        <path d="M8 21a8 8 0 0 1 16 0" fill="none" stroke="#fff" strokeWidth="2.6" strokeLinecap="round" />
        <path d="M16 21l4.5-6" stroke="#c7d2fe" strokeWidth="2.6" strokeLinecap="round" />
        <circle cx="16" cy="21" r="2" fill="#fff" />
      </svg>
      <span className="logo-text">
        llm-quota <span className="logo-sub">admin</span>
      </span>
    </span>
  );
}

export function Shell({ children, onSignOut }: { children: ReactNode; onSignOut: () => void }) {
  const path = usePath();
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <div className="sidebar-inner">
        <Link to="/keys" className="sidebar-logo" aria-label="llm-quota admin: home">
          <Logo />
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => {
              const current = item.match(path);
              return (
                <li key={item.to}>
                  <Link to={item.to} className={current ? "nav-link active" : "nav-link"} aria-current={current ? "page" : undefined}>
                    <Icon name={item.icon} size={17} />
                    <span>{item.label}</span>
                  </Link>
                </li>
              );
            })}
          </ul>
        </nav>
        <button type="button" className="nav-link sign-out" onClick={onSignOut}>
          <Icon name="logout" size={17} />
          <span>Sign out</span>
        </button>
        </div>
      </aside>
      <main id="main" className="main" tabIndex={-1}>
        {children}
      </main>
    </div>
  );
}
