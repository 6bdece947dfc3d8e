/**
 * The audit trail page by page, newest first: the first page on mount (and on `reload`), then
 * `loadMore` asks for the entries older than the last one shown (`before=<its id>`).
 */
import { useCallback, useEffect, useRef, useState } from "react";
import type { Client } from "../../api/client";
import type { AuditEntry } from "../../api/types";

export interface AuditFeed {
  entries: AuditEntry[] | undefined;
  /** The first page failed. */
  error: unknown;
  loading: boolean;
  /** The last page was shorter than a full one: nothing older. */
  done: boolean;
  loadingMore: boolean;
  moreError: unknown;
  loadMore: () => Promise<void>;
  /** Back to the newest page. */
  reload: () => Promise<void>;
}

export function useAudit(client: Client, { keyId, pageSize = 50 }: { keyId?: number; pageSize?: number } = {}): AuditFeed {
  const [entries, setEntries] = useState<AuditEntry[] | undefined>(undefined);
  const [done, setDone] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [loadingMore, setLoadingMore] = useState(false);
  const [moreError, setMoreError] = useState<unknown>(undefined);
  const generation = useRef(0);
  const entriesRef = useRef(entries);
  entriesRef.current = entries;

  const reload = useCallback(async () => {
    const mine = ++generation.current;
    setLoading(true);
    setMoreError(undefined);
    try {
      const page = await client.audit({ limit: pageSize, key_id: keyId });
      if (mine !== generation.current) return;
      setEntries(page);
      setDone(page.length < pageSize);
      setError(undefined);
    } catch (e) {
      if (mine === generation.current) setError(e);
    } finally {
      if (mine === generation.current) {
        setLoading(false);
        setLoadingMore(false);
      }
    }
  }, [client, keyId, pageSize]);

  const loadMore = useCallback(async () => {
    const shown = entriesRef.current;
    if (!shown || shown.length === 0) return;
    const mine = generation.current;
    setLoadingMore(true);
    setMoreError(undefined);
    try {
      const page = await client.audit({ limit: pageSize, key_id: keyId, before: shown[shown.length - 1].id });
      if (mine !== generation.current) return;
      const seen = new Set(shown.map((e) => e.id));
      setEntries([...shown, ...page.filter((e) => !seen.has(e.id))]);
      setDone(page.length < pageSize);
    } catch (e) {
      if (mine === generation.current) setMoreError(e);
    } finally {
      if (mine === generation.current) setLoadingMore(false);
    }
  }, [client, keyId, pageSize]);

  useEffect(() => {
    void reload();
  }, [reload]);

  return { entries, error, loading, done, loadingMore, moreError, loadMore, reload };
}
