import type { PublicConfig, Tenant } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import type { Session } from "../session";
import { load, notice } from "../ui";
import { configView } from "./config";
import { conversationView } from "./conversation";
import { dashboardView } from "./dashboard";
import { experimentsView, resultsView } from "./experiments";
import { inboxView } from "./inbox";
import { keysView } from "./keys";
import { knowledgeView } from "./knowledge";
import { monitoringView } from "./monitoring";
import { operatorsView } from "./operators";
import { privacyView } from "./privacy";
import { toolsView } from "./tools";
import { usageView } from "./usage";

type Kind = Session["kind"];
const EVERYONE: readonly Kind[] = ["admin", "tenant", "operator"];

/**
 * Every tab, once, with who sees it: an operator's pages are the tenant's own under /operator (the
 * configuration stays with the admin and the key); keys are the admin's.
 */
const TABS: readonly { id: string; title: string; for: readonly Kind[] }[] = [
  { id: "dashboard", title: "Dashboard", for: EVERYONE },
  { id: "inbox", title: "Inbox", for: EVERYONE },
  { id: "monitoring", title: "Monitoring", for: EVERYONE },
  { id: "usage", title: "Usage", for: EVERYONE },
  { id: "experiments", title: "Experiments", for: EVERYONE },
  { id: "tools", title: "Tools", for: EVERYONE },
  { id: "knowledge", title: "Knowledge", for: EVERYONE },
  { id: "privacy", title: "Privacy", for: EVERYONE },
  { id: "config", title: "Configuration", for: ["admin", "tenant"] },
  { id: "keys", title: "Keys", for: ["admin"] },
  { id: "operators", title: "Operators", for: EVERYONE },
];

/** One tenant's pages under tabs; `rest` is the path after the tab (an experiment's name, a conversation's id). */
export function tenantView(api: Api, tenantId: string, tab: string, rest: string[]): HTMLElement {
  const admin = api.session.kind === "admin";
  const tabs = TABS.filter((t) => t.for.includes(api.session.kind));
  const base = `#/t/${encodeURIComponent(tenantId)}`;
  const nav = el(
    "nav",
    { class: "tabs", "aria-label": "Tenant pages" },
    ...tabs.map((t) =>
      el("a", { href: `${base}/${t.id}`, ...(t.id === tab ? { "aria-current": "page" } : {}) }, t.title),
    ),
  );
  const heading = el(
    "h1",
    {},
    api.session.kind === "tenant" ? `${api.session.name} (${tenantId})` : tenantId,
  );
  const body = el("div", { class: "tab-body" });
  const show = (node: HTMLElement) => body.replaceChildren(node);
  if (tab === "dashboard") show(dashboardView(api, tenantId));
  else if (tab === "inbox" && rest[0])
    show(conversationView(api, tenantId, decodeURIComponent(rest[0]), base));
  else if (tab === "inbox") show(inboxView(api, tenantId, base));
  else if (tab === "monitoring") show(monitoringView(api, tenantId));
  else if (tab === "usage") show(usageView(api, tenantId));
  else if (tab === "experiments" && rest[0])
    show(resultsView(api, tenantId, decodeURIComponent(rest[0]), `${base}/experiments`));
  else if (tab === "experiments") show(experimentsView(api, tenantId, `${base}/experiments`));
  else if (tab === "tools") show(toolsView(api, tenantId));
  else if (tab === "knowledge") show(knowledgeView(api, tenantId));
  else if (tab === "privacy") show(privacyView(api, tenantId));
  else if (tab === "keys" && admin) show(keysView(api, tenantId));
  else if (tab === "operators") show(operatorsView(api, tenantId));
  else if (tab === "config" && admin) {
    const render = (t: Tenant, saved?: string): HTMLElement => {
      heading.textContent = `${t.name} (${t.tenant_id})`;
      const form = configView(api, t, (n) => show(render(n, `Saved: config version ${n.config_version}.`)));
      return el("div", {}, saved ? notice(saved) : null, form);
    };
    void load(body, async () =>
      render(await api.get<Tenant>(`/admin/tenants/${encodeURIComponent(tenantId)}`)),
    );
  } else if (tab === "config") {
    void load(body, async () => {
      const c = await api.get<PublicConfig>("/v1/config");
      return el(
        "div",
        {},
        el(
          "dl",
          { class: "facts" },
          el("dt", {}, "Name"),
          el("dd", {}, c.name),
          el("dt", {}, "Model"),
          el("dd", {}, c.model),
          el("dt", {}, "Greeting"),
          el("dd", {}, c.greeting),
        ),
        el("p", { class: "muted" }, "Only the admin can change the configuration."),
      );
    });
  } else show(el("p", {}, "No such page."));
  if (admin && tab !== "config")
    void api.get<Tenant>(`/admin/tenants/${encodeURIComponent(tenantId)}`).then(
      (t) => (heading.textContent = `${t.name} (${t.tenant_id})`),
      () => {},
    );
  return el("section", { class: "tenant" }, heading, nav, body);
}
