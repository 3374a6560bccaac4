/**
 * The console at /console: a single-page app over the admin API (admin token), a tenant's own API
 * (secret key) or an operator's console session (/operator). Routes live in the URL hash: #/tenants, #/new, #/monitoring,
 * #/t/<id>/<tab>.
 */
import { el } from "../shared/dom";
import { Api } from "./api";
import { destroyCharts } from "./charts";
import { loadSession, type Session, saveSession } from "./session";
import { button, errorBox } from "./ui";
import { createTenantView } from "./views/config";
import { platformView } from "./views/monitoring";
import { acceptInviteView, redeemMagicLink, signInView } from "./views/signin";
import { tenantView } from "./views/tenant";
import { tenantsView } from "./views/tenants";

const app = document.getElementById("app") ?? document.body;

function signOut(): void {
  const s = loadSession();
  saveSession(null);
  // An operator's cookie ends on the server too (the key and admin sessions live only in this tab).
  if (s?.kind === "operator") void new Api(s, () => {}).send("DELETE", "/operator/session").catch(() => {});
  location.hash = "#/signin";
  route();
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
      button("Sign out", signOut),
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
  const api = new Api(session, signOut);
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
