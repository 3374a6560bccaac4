import type {
  Alert,
  AlertEvaluation,
  MonitoringMetric,
  MonitoringVolume,
  PlatformMonitoring,
  TenantMonitoring,
} from "../../../src/api-types";
import { el, type Kid } from "../../shared/dom";
import type { Api } from "../api";
import { date, fixed, int, usd } from "../format";
import { count, inUnit, metricLabel, STATE_LABELS, thresholdText, windowText } from "../metrics";
import { button, errorBox, kpi, load, notice, table } from "../ui";
import { alertSettingsView } from "./alert-settings";

/** A metric's state as a coloured badge; `data-state` names it for tests and scripts. */
function badge(state: MonitoringMetric["state"]): HTMLElement {
  return el("span", { class: `state ${state}`, "data-state": state }, STATE_LABELS[state] ?? state);
}

/** The metrics: value in its unit, target, threshold with its window, events, state. */
function metricsTable(metrics: Record<string, MonitoringMetric>, caption: string): HTMLElement {
  const rows: Kid[][] = Object.entries(metrics).map(([key, m]) => [
    el("strong", {}, metricLabel(key)),
    el(
      "span",
      {},
      inUnit(m.value, m.unit),
      m.baseline !== undefined
        ? el("span", { class: "sub" }, `now ${fixed(m.current ?? 0, 1)}, baseline ${fixed(m.baseline, 1)}`)
        : null,
    ),
    m.target,
    el(
      "span",
      {},
      thresholdText(m.op, m.threshold, m.unit),
      // handoff_wait has no window: its value is the longest wait of the conversations waiting now.
      el(
        "span",
        { class: "sub" },
        m.rule === "handoff_wait" ? "of those waiting now" : `over ${windowText(m.window_hours)}`,
      ),
    ),
    `${int(m.events)} / ${int(m.min_events)}`,
    badge(m.state),
  ]);
  return table(["Metric", "Value", "Target", "Alerts at", "Events / min.", "State"], rows, caption);
}

/** The last 24 hours: requests, tokens, cost, refusals by level and by budget, users today. */
function volumeBlock(v: MonitoringVolume): HTMLElement {
  const rl = v.rate_limit_refusals;
  const b = v.budget_refusals;
  return el(
    "div",
    { class: "kpis" },
    kpi("requests", "Requests", int(v.requests), `${int(v.answered)} answered, ${int(v.blocked)} blocked`),
    kpi("errors", "Errors", int(v.errors)),
    kpi(
      "tokens",
      "Tokens",
      int(v.input_tokens + v.output_tokens),
      `${int(v.input_tokens)} in, ${int(v.output_tokens)} out`,
    ),
    kpi("cost", "Cost", usd(v.cost_usd), count(v.conversations, "conversation")),
    kpi(
      "rate_limited",
      "Rate-limited",
      int(rl.user + rl.tenant + rl.global),
      `user ${int(rl.user)} · tenant ${int(rl.tenant)} · global ${int(rl.global)}`,
    ),
    kpi(
      "budget_refused",
      "Over budget",
      int(b.monthly_tokens + b.visitor_tokens + b.daily_cost + b.conversation_cost),
      `monthly tokens ${int(b.monthly_tokens)} · visitor share ${int(b.visitor_tokens)} · daily cost ${int(b.daily_cost)} · conversation ${int(b.conversation_cost)}`,
    ),
    kpi("safety", "Safety violations", int(v.safety_violations)),
    kpi("dau_today", "Active users today", int(v.daily_active_users_today)),
  );
}

/** The unit and side of an alert's metric, from the monitoring answer (fallbacks for an unknown one). */
function ruleOf(metrics: Record<string, MonitoringMetric>, a: Alert): { unit: string; op: "gt" | "lt" } {
  const m = metrics[a.metric];
  return { unit: m?.unit ?? "", op: m?.op ?? "gt" };
}

/** The alerts firing now, first on the page. */
function firingPanel(m: TenantMonitoring): HTMLElement {
  if (m.alerts.length === 0)
    return el(
      "section",
      { class: "alert ok firing-none", "aria-label": "Firing alerts" },
      "No alerts firing.",
    );
  return el(
    "section",
    { class: "alert error firing", "aria-label": "Firing alerts" },
    el("strong", {}, m.alerts.length === 1 ? "1 alert firing" : `${m.alerts.length} alerts firing`),
    el(
      "ul",
      {},
      ...m.alerts.map((a) => {
        const { unit, op } = ruleOf(m.metrics, a);
        return el(
          "li",
          { "data-alert": a.rule },
          el("strong", {}, metricLabel(a.metric)),
          ` is ${inUnit(a.value, unit)}: alerts at ${thresholdText(op, a.threshold, unit)} over ${windowText(a.window_hours)} (${count(a.events, "event")}). `,
          el(
            "span",
            { class: "muted" },
            `Firing since ${date(a.fired_at)} (first ${inUnit(a.first_value, unit)}), last checked ${date(a.evaluated_at)}.`,
          ),
        );
      }),
    ),
  );
}

function historyTable(alerts: Alert[], metrics: Record<string, MonitoringMetric>): HTMLElement {
  if (alerts.length === 0) return el("p", { class: "muted" }, "No resolved alerts yet.");
  return table(
    ["Metric", "Fired", "Resolved", "First value", "Last value", "Threshold"],
    alerts.map((a) => {
      const { unit, op } = ruleOf(metrics, a);
      return [
        el("strong", {}, metricLabel(a.metric)),
        date(a.fired_at),
        date(a.resolved_at),
        inUnit(a.first_value, unit),
        inUnit(a.value, unit),
        `${thresholdText(op, a.threshold, unit)} over ${windowText(a.window_hours)}`,
      ];
    }),
    "Recently resolved alerts",
  );
}

/** What an evaluation did, in a sentence or two. */
function evaluationNotice(r: AlertEvaluation, withTenant: boolean): HTMLElement {
  const names = (list: Alert[]) =>
    list.length === 0
      ? "none"
      : list.map((a) => (withTenant ? `${a.tenant_id}: ` : "") + metricLabel(a.metric)).join(", ");
  return notice(
    `Evaluated at ${date(r.at)}: ${count(r.tenants, "tenant")}, ` +
      `${count(r.evaluated, "rule")} decided, ${r.insufficient} with too few events. ` +
      `Fired: ${names(r.fired)}. Resolved: ${names(r.resolved)}. Still firing: ${r.still_firing}. ` +
      `Notices queued: ${r.notices}.`,
    r.fired.length > 0 ? "info" : "ok",
  );
}

/** The admin's "Evaluate now": runs the alert rules (one tenant's, or all) and reports. */
function evaluateButton(api: Api, tenantId: string | undefined, status: HTMLElement, after: () => void) {
  const b = button(
    "Evaluate now",
    () => {
      b.disabled = true;
      const q = tenantId ? `?tenant_id=${encodeURIComponent(tenantId)}` : "";
      api
        .send<AlertEvaluation>("POST", `/admin/monitoring/evaluate${q}`)
        .then((r) => {
          status.replaceChildren(evaluationNotice(r, !tenantId));
          after();
        })
        .catch((err: unknown) => status.replaceChildren(errorBox(err)))
        .finally(() => {
          b.disabled = false;
        });
    },
    { class: "primary" },
  );
  return b;
}

/**
 * A tenant's monitoring: alerts firing now on top, the metrics with their targets, thresholds
 * and states, the last 24 hours' volume, the alert history, and the alert settings form.
 */
export function monitoringView(api: Api, tenantId: string): HTMLElement {
  const body = el("div");
  const status = el("div", { "aria-live": "polite" });
  const refresh = () =>
    load(
      body,
      async () => {
        const [m, history] = await Promise.all([
          api.get<TenantMonitoring>(api.tenantPath(tenantId, "monitoring")),
          api.get<{ alerts: Alert[] }>(`${api.tenantPath(tenantId, "alerts")}?state=resolved&limit=20`),
        ]);
        return el(
          "div",
          {},
          firingPanel(m),
          el(
            "p",
            { class: "muted" },
            `As of ${date(m.at)}. Each metric is read over its rule's window from the analytics rollups; ` +
              "a rule alerts only with at least its minimum of events. The rules are evaluated every 5 minutes.",
          ),
          metricsTable(m.metrics, "Alert rules and their metrics"),
          el("h2", {}, `Last ${m.volume.window_hours} hours`),
          volumeBlock(m.volume),
          el("h2", {}, "Alert history"),
          historyTable(history.alerts, m.metrics),
        );
      },
      true,
    );
  void refresh();
  const settings = el("div");
  void load(settings, async () => alertSettingsView(api, tenantId, () => void refresh()));
  return el(
    "section",
    { class: "monitoring" },
    el(
      "div",
      { class: "toolbar" },
      button("Refresh", () => void refresh()),
      api.session.kind === "admin" ? evaluateButton(api, tenantId, status, () => void refresh()) : null,
    ),
    status,
    body,
    el("h2", {}, "Alert settings"),
    settings,
  );
}

/** The admin's platform page: every tenant under the default rules, volume, queue lag, alerts by rule. */
export function platformView(api: Api): HTMLElement {
  const body = el("div");
  const status = el("div", { "aria-live": "polite" });
  const refresh = () =>
    load(
      body,
      async () => {
        const p = await api.get<PlatformMonitoring>("/admin/monitoring");
        const firing = Object.entries(p.alerts_firing).filter(([, n]) => n > 0);
        const metricOf = new Map<string, string>(Object.entries(p.metrics).map(([key, m]) => [m.rule, key]));
        return el(
          "div",
          {},
          firing.length === 0
            ? el("section", { class: "alert ok", "aria-label": "Firing alerts" }, "No alerts firing.")
            : el(
                "section",
                { class: "alert error firing", "aria-label": "Firing alerts" },
                el("strong", {}, "Alerts firing, by rule"),
                el(
                  "ul",
                  {},
                  ...firing.map(([rule, n]) =>
                    el(
                      "li",
                      { "data-alert": rule },
                      `${metricLabel(metricOf.get(rule) ?? rule)}: ${count(n, "tenant")}`,
                    ),
                  ),
                ),
              ),
          el(
            "p",
            { class: "muted" },
            `As of ${date(p.at)}: ${count(p.tenants.active, "active tenant")}, ` +
              `${p.tenants.inactive} inactive. ` +
              "All tenants together under the default rules; each tenant's own thresholds are on its Monitoring tab.",
          ),
          metricsTable(p.metrics, "Platform metrics (default rules)"),
          el("h2", {}, `Last ${p.volume.window_hours} hours`),
          volumeBlock(p.volume),
          el("h2", {}, "Queues"),
          p.queues.length === 0
            ? el("p", { class: "muted" }, "No queue batches written yet.")
            : table(
                ["Queue", "Messages (5 min)", "Average lag", "Longest lag", "Last write"],
                p.queues.map((q) => [
                  el("code", {}, q.queue),
                  int(q.messages_5m),
                  q.avg_lag_seconds === null ? "—" : `${fixed(q.avg_lag_seconds, 1)} s`,
                  q.max_lag_seconds === null ? "—" : `${fixed(q.max_lag_seconds, 1)} s`,
                  date(q.last_write),
                ]),
                "Queue lag over the last 5 minutes",
              ),
        );
      },
      true,
    );
  void refresh();
  return el(
    "section",
    { class: "monitoring" },
    el(
      "div",
      { class: "toolbar" },
      el("h1", {}, "Platform monitoring"),
      button("Refresh", () => void refresh()),
      evaluateButton(api, undefined, status, () => void refresh()),
    ),
    status,
    body,
  );
}
