import type { AlertSettings, AlertSettingsInput, AlertSettingsRule } from "../../../src/api-types";
import { ApiError } from "../../shared/api-error";
import { el } from "../../shared/dom";
import { type Api, issuesOf } from "../api";
import {
  type ControlKey,
  controlOf,
  editOf,
  metricLabel,
  type RuleEdit,
  type SettingsField,
  settingsPut,
} from "../metrics";
import { button, errorBox, notice } from "../ui";

const UNIT_WORDS: Record<string, string> = {
  ms: "ms",
  pct: "%",
  usd: "USD",
  score: "score 1-5",
  ratio: "× baseline",
  s: "seconds",
};

const FIELD_WORDS: Record<SettingsField, string> = {
  threshold: "threshold",
  window_hours: "window in hours",
  min_events: "minimum events",
  enabled: "enabled",
};

interface Row {
  threshold: HTMLInputElement;
  window_hours: HTMLInputElement;
  min_events: HTMLInputElement;
  enabled: HTMLInputElement;
  reset: HTMLButtonElement;
}

/**
 * The alert settings form: each rule's threshold, window, minimum events and on/off, the alert
 * webhook; only what changed is sent, the server's refusals are shown next to the fields they name,
 * and "Reset to default" removes a rule's override (sends null).
 */
export async function alertSettingsView(
  api: Api,
  tenantId: string,
  onSaved: () => void,
): Promise<HTMLElement> {
  const path = api.tenantPath(tenantId, "alert-settings");
  let current = await api.get<AlertSettings>(path);
  const status = el("div", { "aria-live": "polite" });
  const msgs = new Map<ControlKey, { input: HTMLInputElement; msg: HTMLElement; help: string }>();
  const rows = new Map<string, Row>();

  const mark = (key: ControlKey, message: string | undefined) => {
    const c = msgs.get(key);
    if (!c) return;
    c.input.setAttribute("aria-invalid", message ? "true" : "false");
    c.msg.textContent = message ?? c.help;
    c.msg.classList.toggle("invalid", Boolean(message));
  };
  const clearMarks = () => {
    for (const k of msgs.keys()) mark(k, undefined);
  };

  /** Puts a rule's values into its row, and enables its reset when it has an override. */
  const fill = (r: AlertSettingsRule) => {
    const row = rows.get(r.rule);
    if (!row) return;
    const e = editOf(r);
    row.threshold.value = e.threshold;
    row.window_hours.value = e.window_hours;
    row.min_events.value = e.min_events;
    row.enabled.checked = e.enabled;
    row.reset.disabled = !(r.rule in current.overrides);
  };

  const input = (
    key: ControlKey,
    attrs: Record<string, string>,
    help = "",
  ): [HTMLInputElement, HTMLElement] => {
    const id = `as-${key.replace(".", "-")}`;
    const i = el("input", { id, name: key, "aria-describedby": `${id}-msg`, ...attrs });
    const msg = el("span", { class: "field-msg", id: `${id}-msg` }, help);
    msgs.set(key, { input: i, msg, help });
    return [i, msg];
  };

  const send = (body: AlertSettingsInput, done: (s: AlertSettings) => void, busy: HTMLButtonElement) => {
    busy.disabled = true;
    api
      .send<AlertSettings>("PUT", path, body)
      .then((s) => {
        current = s;
        done(s);
        onSaved();
      })
      .catch((err: unknown) => {
        if (err instanceof ApiError)
          for (const i of issuesOf(err)) {
            const key = controlOf(i.path);
            if (key) mark(key, i.message);
          }
        status.replaceChildren(errorBox(err));
      })
      .finally(() => {
        busy.disabled = false;
        for (const r of current.rules) {
          const row = rows.get(r.rule);
          if (row) row.reset.disabled = !(r.rule in current.overrides);
        }
      });
  };

  const body = el("tbody");
  for (const r of current.rules) {
    const label = metricLabel(r.metric);
    const num = (f: SettingsField, step: string, help = "") =>
      input(`${r.rule}.${f}`, { type: "number", step, "aria-label": `${label} ${FIELD_WORDS[f]}` }, help);
    const [threshold, tMsg] = num("threshold", "any", `default ${r.default_threshold}`);
    const [windowHours, wMsg] = num("window_hours", "1");
    const [minEvents, mMsg] = num("min_events", "1");
    const [enabled, eMsg] = input(`${r.rule}.enabled`, {
      type: "checkbox",
      "aria-label": `${label} enabled`,
    });
    const reset = button(
      "Reset to default",
      () => {
        clearMarks();
        send(
          { rules: { [r.rule]: null } },
          (s) => {
            const back = s.rules.find((x) => x.rule === r.rule);
            if (back) fill(back);
            status.replaceChildren(notice(`${label}: back to the default rule.`));
          },
          reset,
        );
      },
      // The name starts with the visible text, so speech input ("click Reset to default") finds it.
      { "aria-label": `Reset to default: ${label}` },
    );
    // handoff_wait looks at the conversations waiting now: no window, no minimum to set.
    windowHours.disabled = !r.windowed;
    minEvents.disabled = !r.windowed;
    rows.set(r.rule, { threshold, window_hours: windowHours, min_events: minEvents, enabled, reset });
    body.append(
      el(
        "tr",
        { "data-rule": r.rule },
        el("th", { scope: "row" }, el("strong", {}, label), el("span", { class: "sub" }, r.description)),
        el("td", {}, `${r.op === "gt" ? "above" : "below"}, ${UNIT_WORDS[r.unit] ?? r.unit}`),
        el("td", {}, threshold, tMsg),
        el("td", {}, windowHours, wMsg),
        el("td", {}, minEvents, mMsg),
        el("td", {}, enabled, eMsg),
        el("td", {}, reset),
      ),
    );
    fill(r);
  }

  const [webhook, hookMsg] = input(
    "webhook_url",
    { type: "url", placeholder: "https://hooks.example.com/chatedge" },
    "POSTed a JSON notice when an alert fires or resolves; empty for none (the platform's, if set). " +
      "Alerts also go by email to the escalation address.",
  );
  webhook.value = current.webhook_url ?? "";

  const save = el("button", { type: "submit", class: "primary" }, "Save alert settings");
  const form = el(
    "form",
    { class: "alert-settings", novalidate: "" },
    el(
      "table",
      {},
      el("caption", {}, "Alert rules (the defaults, with this tenant's changes)"),
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          ...["Rule", "Alerts when", "Threshold", "Window (hours)", "Min. events", "On", "Override"].map(
            (h) => el("th", { scope: "col" }, h),
          ),
        ),
      ),
      body,
    ),
    el(
      "div",
      { class: "field webhook" },
      el("label", { for: "as-webhook_url" }, "Alert webhook URL"),
      webhook,
      hookMsg,
    ),
    el("div", { class: "actions" }, save),
    status,
  );

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    clearMarks();
    const edits: Record<string, RuleEdit> = {};
    for (const [rule, row] of rows)
      edits[rule] = {
        threshold: row.threshold.value,
        window_hours: row.window_hours.value,
        min_events: row.min_events.value,
        enabled: row.enabled.checked,
      };
    const put = settingsPut(current, edits, webhook.value);
    if (!put.ok) {
      for (const [k, m] of Object.entries(put.problems)) mark(k as ControlKey, m);
      status.replaceChildren(
        el("div", { class: "alert error", role: "alert" }, "Please fix the marked fields."),
      );
      return;
    }
    if (Object.keys(put.body).length === 0) {
      status.replaceChildren(notice("Nothing changed.", "info"));
      return;
    }
    send(
      put.body,
      (s) => {
        for (const r of s.rules) fill(r);
        webhook.value = s.webhook_url ?? "";
        status.replaceChildren(notice("Saved alert settings."));
      },
      save,
    );
  });
  return form;
}
