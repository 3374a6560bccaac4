/** Who is signed in: the admin token or a tenant's secret key, kept in this tab only. */
export type Session =
  | { kind: "admin"; token: string }
  | { kind: "tenant"; token: string; tenantId: string; name: string };

const SLOT = "chatedge-console";

/** The session of this tab, if any (sessionStorage: gone when the tab closes). */
export function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SLOT);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  if (s) sessionStorage.setItem(SLOT, JSON.stringify(s));
  else sessionStorage.removeItem(SLOT);
}
