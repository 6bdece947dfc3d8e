/**
 * A small history router: the admin listener answers every non-API path with the app, so
 * `/keys/3` can be bookmarked and reloaded. `navigate` pushes a path; `Link` is an `<a>` that
 * navigates without a reload (and still opens in a new tab with a modifier key).
 */
import { useEffect, useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from "react";

const NAVIGATE = "llm-quota:navigate";

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  window.addEventListener(NAVIGATE, onChange);
  return () => {
    window.removeEventListener("popstate", onChange);
    window.removeEventListener(NAVIGATE, onChange);
  };
}

export function usePath(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === window.location.pathname) return;
  if (options.replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  window.dispatchEvent(new Event(NAVIGATE));
  window.scrollTo?.({ top: 0 });
}

export type Route =
  | { page: "keys" }
  | { page: "key"; id: number }
  | { page: "teams" }
  | { page: "team"; id: number }
  | { page: "usage" }
  | { page: "audit" }
  | { page: "settings" }
  | { page: "upstreams" }
  | { page: "connect" }
  | { page: "not-found" };

export function match(path: string): Route {
  const clean = path.replace(/\/+$/, "") || "/";
  if (clean === "/" || clean === "/keys") return { page: "keys" };
  const key = clean.match(/^\/keys\/(\d+)$/);
  if (key) return { page: "key", id: Number(key[1]) };
  if (clean === "/teams") return { page: "teams" };
  const team = clean.match(/^\/teams\/(\d+)$/);
  if (team) return { page: "team", id: Number(team[1]) };
  if (clean === "/usage") return { page: "usage" };
  if (clean === "/audit") return { page: "audit" };
  if (clean === "/settings") return { page: "settings" };
  if (clean === "/upstreams") return { page: "upstreams" };
  if (clean === "/connect") return { page: "connect" };
  return { page: "not-found" };
}

export function Link({ to, onClick, ...rest }: AnchorHTMLAttributes<HTMLAnchorElement> & { to: string }) {
  const handle = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) {
      return;
    }
    event.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={handle} {...rest} />;
}

/** Sets the document title for the page on screen. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · llm-quota admin`;
  }, [title]);
}
