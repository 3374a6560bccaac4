/**
 * The operator console at /console: a single-page app over the admin API (admin token) or a
 * tenant's own API (secret key). Routes live in the URL hash: #/tenants, #/new, #/monitoring,
 * #/t/<id>/<tab>.
 */
import { el } from "../shared/dom";
import { Api } from "./api";
import { destroyCharts } from "./charts";
import { loadSession, type Session, saveSession } from "./session";
import { button } from "./ui";
import { createTenantView } from "./views/config";
import { platformView } from "./views/monitoring";
import { signInView } from "./views/signin";
import { tenantView } from "./views/tenant";
import { tenantsView } from "./views/tenants";

const app = document.getElementById("app") ?? document.body;

function signOut(): void {
  saveSession(null);
  location.hash = "#/signin";
  route();
}

function shell(s: Session, main: HTMLElement): HTMLElement {
  const who =
    s.kind === "admin"
      ? "admin"
      : `${s.name} (${s.tenantId}), key ${s.token.slice(0, 7)}…${s.token.slice(-4)}`;
  return el(
    "div",
    { class: "shell" },
    el(
      "header",
      { class: "top" },
      el(
        "a",
        { class: "brand", href: s.kind === "admin" ? "#/tenants" : `#/t/${s.tenantId}/dashboard` },
        "chatedge console",
      ),
      s.kind === "admin" ? el("a", { href: "#/tenants" }, "Tenants") : null,
      s.kind === "admin" ? el("a", { href: "#/monitoring" }, "Platform monitoring") : null,
      el("span", { class: "who" }, `Signed in as ${who}`),
      button("Sign out", signOut),
    ),
    el("main", { id: "main", tabindex: "-1" }, main),
  );
}

/** Draws the page the hash names. */
function route(): void {
  destroyCharts();
  const session = loadSession();
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  if (!session) {
    app.replaceChildren(
      signInView((s) => {
        saveSession(s);
        location.hash = s.kind === "admin" ? "#/tenants" : `#/t/${s.tenantId}/dashboard`;
        route();
      }),
    );
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
