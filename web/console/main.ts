/**
 * The console at /console: a single-page app over the admin API (admin token), a tenant's own API
 * (secret key) or an operator's console session (/operator). Routes live in the URL hash: #/tenants, #/new, #/monitoring,
 * #/t/<id>/<tab>.
 */
import { ApiError } from "../shared/api-error";
import { el } from "../shared/dom";
import { Api } from "./api";
import { destroyCharts } from "./charts";
import { loadSession, type Session, saveSession } from "./session";
import { button, errorBox, notice } from "./ui";
import { createTenantView } from "./views/config";
import { platformView } from "./views/monitoring";
import { acceptInviteView, redeemMagicLink, signInView } from "./views/signin";
import { tenantView } from "./views/tenant";
import { tenantsView } from "./views/tenants";

const app = document.getElementById("app") ?? document.body;

/**
 * Ends the session. An operator's cookie ends on the server too (key and admin sessions live only in
 * this tab): the console waits for that DELETE before showing the sign-in page, and sends it with
 * `keepalive`, so it still reaches the server if the tab closes at once.
 */
async function signOut(): Promise<void> {
  const s = loadSession();
  saveSession(null);
  let failed: unknown = null;
  if (s?.kind === "operator") {
    app.replaceChildren(el("main", { id: "main" }, el("p", { "aria-live": "polite" }, "Signing out…")));
    try {
      await new Api(s, () => {}).send("DELETE", "/operator/session", undefined, { keepalive: true });
    } catch (err) {
      // A 401 means the session had already ended; anything else leaves it open on the server.
      if (!(err instanceof ApiError && err.status === 401)) failed = err;
    }
  }
  // pushState, not `location.hash`: a hashchange would draw the page again, after the notice below.
  history.pushState(null, "", "#/signin");
  route();
  if (failed !== null) {
    document
      .getElementById("main")
      ?.prepend(
        errorBox(failed),
        notice(
          "Signed out in this tab, but the server did not end the session; it ends on its own within 12 hours. Sign in and out again to end it now.",
          "info",
        ),
      );
  }
}

function signedIn(s: Session): void {
  saveSession(s);
  location.hash = s.kind === "admin" ? "#/tenants" : `#/t/${s.tenantId}/dashboard`;
  route();
}

/** One-use links carry their token in the fragment (never sent to a server): `#magic=` or `#invite=`. */
function linkToken(): { kind: "magic" | "invite"; token: string } | null {
  const m = /^#(magic|invite)=([A-Za-z0-9]{43})$/.exec(location.hash);
  return m ? { kind: m[1] as "magic" | "invite", token: m[2] as string } : null;
}

function shell(s: Session, main: HTMLElement): HTMLElement {
  const who =
    s.kind === "admin"
      ? "admin"
      : s.kind === "operator"
        ? `${s.name} <${s.email}> (${s.role}, ${s.tenantId})`
        : `${s.name} (${s.tenantId}), key ${s.token.slice(0, 7)}…${s.token.slice(-4)}`;
  return el(
    "div",
    { class: "shell" },
    el(
      "header",
      { class: "top" },
      el(
        "nav",
        { "aria-label": "Console" },
        el(
          "a",
          { class: "brand", href: s.kind === "admin" ? "#/tenants" : `#/t/${s.tenantId}/dashboard` },
          "chatedge console",
        ),
        s.kind === "admin" ? el("a", { href: "#/tenants" }, "Tenants") : null,
        s.kind === "admin" ? el("a", { href: "#/monitoring" }, "Platform monitoring") : null,
      ),
      el("span", { class: "who" }, `Signed in as ${who}`),
      button("Sign out", () => void signOut()),
    ),
    el("main", { id: "main", tabindex: "-1" }, main),
  );
}

/** Draws the page the hash names. */
function route(): void {
  destroyCharts();
  const link = linkToken();
  if (link) {
    // A link opens a new session, whoever was signed in in this tab.
    saveSession(null);
    history.replaceState(null, "", "#/signin");
    if (link.kind === "invite") {
      app.replaceChildren(el("main", { id: "main" }, acceptInviteView(link.token, signedIn)));
    } else {
      const status = el("p", { "aria-live": "polite" }, "Signing you in…");
      app.replaceChildren(el("main", { id: "main" }, el("h1", {}, "chatedge console"), status));
      redeemMagicLink(link.token).then(signedIn, (err: unknown) =>
        status.replaceChildren(errorBox(err), el("a", { href: "#/signin" }, "Back to sign-in")),
      );
    }
    return;
  }
  const session = loadSession();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (!session) {
    app.replaceChildren(el("main", { id: "main" }, signInView(signedIn)));
    return;
  }
  const api = new Api(session, () => void signOut());
  const go = (hash: string) => {
    location.hash = hash;
  };
  let main: HTMLElement;
  if (parts[0] === "t" && parts[1] && (session.kind === "admin" || parts[1] === session.tenantId)) {
    main = tenantView(api, decodeURIComponent(parts[1]), parts[2] ?? "dashboard", parts.slice(3));
  } else if (session.kind === "admin" && parts[0] === "monitoring") {
    main = platformView(api);
  } else if (session.kind === "admin" && parts[0] === "new") {
    main = createTenantView(api, (t) => go(`#/t/${encodeURIComponent(t.tenant_id)}/config`));
  } else if (session.kind === "admin") {
    main = tenantsView(api);
  } else {
    main = tenantView(api, session.tenantId, "dashboard", []);
  }
  app.replaceChildren(shell(session, main));
  document.title = `chatedge console: ${parts.join(" / ") || "home"}`;
}

window.addEventListener("hashchange", route);
route();
