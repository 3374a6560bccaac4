/**
 * Who is signed in: the admin token or a tenant's secret key (kept in this tab only), or an
 * operator, whose session is an HttpOnly cookie the page never sees; the tab keeps only who it is
 * and the CSRF token writes need (src/operators/, docs/handoff.md).
 */
export type Session =
  | { kind: "admin"; token: string }
  | { kind: "tenant"; token: string; tenantId: string; name: string }
  | {
      kind: "operator";
      tenantId: string;
      operatorId: string;
      name: string;
      email: string;
      role: "owner" | "agent";
      csrf: string;
    };

/** What POST /operator/session (and the invitation and magic-link routes) answer. */
export interface OperatorSessionBody {
  operator: { id: string; tenant_id: string; email: string; name: string; role: "owner" | "agent" };
  csrf_token: string;
}

/** The console's session of an operator, from the server's answer. */
export function operatorSession(b: OperatorSessionBody): Session {
  const o = b.operator;
  return {
    kind: "operator",
    tenantId: o.tenant_id,
    operatorId: o.id,
    name: o.name,
    email: o.email,
    role: o.role,
    csrf: b.csrf_token,
  };
}

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
