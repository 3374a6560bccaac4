import { describe, expect, it } from "vitest";
import type { AlertSettings, AlertSettingsRule } from "../../src/api-types";
import { RULE_NAMES, RULES } from "../../src/monitoring/rules";
import {
  controlOf,
  count,
  editOf,
  inUnit,
  METRIC_LABELS,
  metricLabel,
  settingsPut,
  thresholdText,
  windowText,
} from "../../web/console/metrics";

const rule = (name: string, over: Partial<AlertSettingsRule> = {}): AlertSettingsRule => ({
  rule: name,
  metric: `${name}_ms`,
  description: "",
  unit: "ms",
  op: "gt",
  threshold: 5000,
  default_threshold: 5000,
  window_hours: 1,
  min_events: 20,
  enabled: true,
  windowed: true,
  ...over,
});

const settings = (rules: AlertSettingsRule[], webhook_url: string | null = null): AlertSettings => ({
  tenant_id: "t",
  webhook_url,
  handoff_wait_alert_seconds: 300,
  overrides: {},
  rules,
});

describe("the console's monitoring words and numbers", () => {
  it("name every metric the server's rules watch", () => {
    expect(Object.keys(METRIC_LABELS).sort()).toEqual(RULE_NAMES.map((r) => RULES[r].metric).sort());
    expect(metricLabel("p50_response_time_ms")).toBe("Response time P50");
    expect(metricLabel("something_new")).toBe("something_new");
  });

  it("write values in their units, and no data as a dash", () => {
    expect(inUnit(4321.4, "ms")).toBe("4,321 ms");
    expect(inUnit(12.345, "pct")).toBe("12.3 %");
    expect(inUnit(-20, "pct")).toBe("-20.0 %");
    expect(inUnit(0.5, "usd")).toBe("$0.50");
    expect(inUnit(0.000068851, "usd")).toBe("$0.000069");
    expect(inUnit(0, "usd")).toBe("$0.00");
    expect(inUnit(4.25, "score")).toBe("4.25");
    expect(inUnit(3.2, "ratio")).toBe("3.2×");
    expect([inUnit(42.4, "s"), inUnit(600, "s"), inUnit(null, "s")]).toEqual(["42 s", "10.0 min", "—"]);
    for (const u of ["ms", "pct", "usd", "score", "ratio"]) expect(inUnit(null, u)).toBe("—");
    expect(thresholdText("gt", 5000, "ms")).toBe("> 5,000 ms");
    expect(thresholdText("lt", 3, "score")).toBe("< 3.00");
    expect([count(1, "tenant"), count(1200, "event")]).toEqual(["1 tenant", "1,200 events"]);
    expect([1, 24, 168, 36].map(windowText)).toEqual(["1 hour", "24 hours", "7 days", "36 hours"]);
  });
});

describe("the alert settings form", () => {
  const current = settings([rule("p50"), rule("csat", { unit: "score", op: "lt", threshold: 3 })]);
  const edits = () => Object.fromEntries(current.rules.map((r) => [r.rule, editOf(r)]));

  it("sends only the rules and fields that changed", () => {
    expect(settingsPut(current, edits(), "")).toEqual({ ok: true, body: {} });
    const e = edits();
    e.p50 = { threshold: " 1 ", window_hours: "1", min_events: "1", enabled: true };
    e.csat = { ...e.csat!, enabled: false };
    expect(settingsPut(current, e, "https://hooks.example/x")).toEqual({
      ok: true,
      body: {
        rules: { p50: { threshold: 1, min_events: 1 }, csat: { enabled: false } },
        webhook_url: "https://hooks.example/x",
      },
    });
  });

  it("clears the webhook with null, and leaves an unchanged one out", () => {
    const withHook = settings(current.rules, "https://hooks.example/x");
    expect(settingsPut(withHook, edits(), "  ")).toEqual({ ok: true, body: { webhook_url: null } });
    expect(settingsPut(withHook, edits(), "https://hooks.example/x")).toEqual({ ok: true, body: {} });
  });

  it("names what is wrong, per field", () => {
    const e = edits();
    e.p50 = { threshold: "", window_hours: "1.5", min_events: "0", enabled: true };
    e.csat = { ...e.csat!, threshold: "abc", window_hours: "721" };
    expect(settingsPut(current, e, "ftp://x")).toEqual({
      ok: false,
      problems: {
        "p50.threshold": "required",
        "p50.window_hours": "a whole number",
        "p50.min_events": "between 1 and 1000000",
        "csat.threshold": "not a number",
        "csat.window_hours": "between 1 and 720",
        webhook_url: "an http(s) URL, or empty for none",
      },
    });
  });

  it("saves other changes beside handoff_wait, whose minimum of 0 the form does not check again", () => {
    const wait = rule("handoff_wait", { unit: "s", threshold: 300, min_events: 0, windowed: false });
    const withWait = settings([...current.rules, wait]);
    const e = edits();
    e.handoff_wait = editOf(wait);
    e.csat = { ...e.csat!, threshold: "3.5" };
    expect(settingsPut(withWait, e, "")).toEqual({ ok: true, body: { rules: { csat: { threshold: 3.5 } } } });
    e.handoff_wait = { ...editOf(wait), threshold: "120" };
    expect(settingsPut(withWait, e, "")).toEqual({
      ok: true,
      body: { rules: { csat: { threshold: 3.5 }, handoff_wait: { threshold: 120 } } },
    });
  });

  it("puts the server's issue paths next to the fields", () => {
    expect(controlOf("rules.csat.threshold")).toBe("csat.threshold");
    expect(controlOf("rules.dau_change.window_hours")).toBe("dau_change.window_hours");
    expect(controlOf("rules.csat")).toBe("csat.threshold");
    expect(controlOf("webhook_url")).toBe("webhook_url");
    expect(controlOf("")).toBeUndefined();
    expect(controlOf("rules")).toBeUndefined();
  });
});
