/**
 * The admin password of this browser tab. Kept in `sessionStorage` (gone when the tab
 * closes), never in `localStorage`; signing out removes it.
 */
const STORAGE_KEY = "llm-quota.admin-password";

export function loadPassword(): string | null {
  try {
    return window.sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

export function savePassword(password: string): void {
  window.sessionStorage.setItem(STORAGE_KEY, password);
}

export function clearPassword(): void {
  try {
    window.sessionStorage.removeItem(STORAGE_KEY);
  } catch {
    /* storage unavailable: nothing kept */
  }
}
