/**
 * Alert evaluation, run by the cron trigger (and on demand by an operator). For every active
 * tenant and enabled rule: the value over the rule's window; with fewer events than the rule's
 * minimum nothing changes (no alert on a tiny sample, and a firing alert is not resolved by
 * silence); past the threshold an alert opens, once: the partial unique index on firing alerts
 * makes a concurrent second evaluation insert nothing, so nothing is sent twice; back inside the
 * threshold (or with the rule switched off) it is resolved. Opening and resolving notify the
 * tenant's escalation address by email and its webhook (or the platform's) through the
 * notifications queue, with notice ids derived from the alert, so a retry is never a second mail.
 */
import { sql } from "drizzle-orm";
import type { SqlExecutor } from "../analytics/sql.ts";
import { toHex } from "../auth/keys.ts";
import type { Env } from "../env.ts";
import type { AlertNotice } from "../notify/messages.ts";
import { crosses, RULES, type RuleName } from "./rules.ts";
import { type AlertView, alertView, loadScopes, type TenantScope, windowRequests } from "./service.ts";
import { readRule, readWindows } from "./windows.ts";

export interface EvaluationReport {
  at: string;
  tenants: number;
  /** Rule evaluations that had enough events to decide. */
  evaluated: number;
  /** Rule evaluations skipped for too few events (or no value). */
  insufficient: number;
  fired: AlertView[];
  resolved: AlertView[];
  still_firing: number;
  notices: number;
}

interface Decision {
  tenant: TenantScope;
  rule: RuleName;
  value: number;
  threshold: number;
  windowHours: number;
  events: number;
}

/** What an alert's notices name besides its figures: the conversations waiting too long, and where the console is. */
export interface NoticeContext {
  conversations?: { id: string; waitingSince: number }[];
  /** The origin of the request that asked for the evaluation (none from the cron). */
  origin?: string;
}

/** A UUID derived from text (SHA-256, version 8 layout): the same alert change gives the same notice id. */
async function derivedId(text: string): Promise<string> {
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))).slice(
    0,
    16,
  );
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x80;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = toHex(h);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The notices an alert change sends: email to the escalation address, and the webhook. */
export async function noticesFor(
  env: Pick<Env, "NOTIFY_WEBHOOK_URL">,
  tenant: TenantScope,
  alert: AlertView,
  now: number,
  context: NoticeContext = {},
): Promise<AlertNotice[]> {
  const def = RULES[alert.rule as RuleName];
  const targets: { channel: "email" | "webhook"; to: string }[] = [];
  if (tenant.escalationEmail) targets.push({ channel: "email", to: tenant.escalationEmail });
  const hook = tenant.webhookUrl ?? env.NOTIFY_WEBHOOK_URL;
  if (hook) targets.push({ channel: "webhook", to: hook });
  return Promise.all(
    targets.map(async (t) => ({
      type: "alert" as const,
      id: await derivedId(`${alert.id}:${alert.state}:${t.channel}`),
      tenantId: tenant.id,
      channel: t.channel,
      to: t.to,
      alertId: alert.id,
      rule: alert.rule,
      metric: def.metric,
      description: def.description,
      state: alert.state,
      value: alert.value,
      threshold: alert.threshold,
      op: def.op,
      unit: def.unit,
      windowHours: alert.window_hours,
      events: alert.events,
      firedAt: Date.parse(alert.fired_at),
      at: now,
      ...(context.conversations && context.conversations.length > 0
        ? { conversations: context.conversations }
        : {}),
      ...(context.origin ? { origin: context.origin } : {}),
    })),
  );
}

const rowsOf = (d: Decision[]) =>
  d.map((x) => ({
    tenant_id: x.tenant.id,
    rule: x.rule,
    value: x.value,
    threshold: x.threshold,
    window_hours: x.windowHours,
    events: x.events,
  }));

/** Evaluates every rule of every active tenant (or of one) at `now`, stores the changes, sends the notices. */
export async function evaluateAlerts(
  env: Pick<Env, "NOTIFY_QUEUE" | "NOTIFY_WEBHOOK_URL">,
  db: SqlExecutor,
  now: number,
  opts: { tenantId?: string; origin?: string } = {},
): Promise<EvaluationReport> {
  const scopes = await loadScopes(db, { tenantId: opts.tenantId, activeOnly: true });
  const [sums, open] = await Promise.all([
    readWindows(db, windowRequests(scopes, { tenants: true, platform: false }), now),
    db.execute(sql`
      select * from alerts where state = 'firing'
        and (${opts.tenantId ?? null}::text is null or tenant_id = ${opts.tenantId ?? null})`),
  ]);
  const firing = new Map(open.rows.map((r) => [`${r.tenant_id}\u0000${r.rule}`, alertView(r)]));
  const report: EvaluationReport = {
    at: new Date(now).toISOString(),
    tenants: scopes.length,
    evaluated: 0,
    insufficient: 0,
    fired: [],
    resolved: [],
    still_firing: 0,
    notices: 0,
  };
  const toFire: Decision[] = [];
  const toKeep: Decision[] = [];
  const toResolve: (Decision & { id: string })[] = [];
  // Per tenant: the conversations waiting longer than its handoff_wait threshold, for the links.
  const overdue = new Map<string, { id: string; waitingSince: number }[]>();
  for (const tenant of scopes) {
    const mine = sums.get(tenant.id);
    for (const rule of tenant.rules) {
      const current = firing.get(`${tenant.id}\u0000${rule.name}`);
      const s = mine?.get(rule.name);
      const reading = s ? readRule(rule.name, s, rule.windowHours) : { value: null, events: 0 };
      if (rule.name === "handoff_wait" && s) {
        const list = s.waiting_oldest
          .filter((c) => now - c.since > rule.threshold * 1000)
          .map((c) => ({ id: c.id, waitingSince: Math.round(c.since) }));
        overdue.set(tenant.id, list);
      }
      const d = {
        tenant,
        rule: rule.name,
        value: reading.value ?? current?.value ?? 0,
        threshold: rule.threshold,
        windowHours: rule.windowHours,
        events: reading.events,
      };
      if (!rule.enabled) {
        if (current) toResolve.push({ ...d, id: current.id });
        continue;
      }
      if (reading.value === null || reading.events < rule.minEvents) {
        report.insufficient += 1;
        if (current) report.still_firing += 1;
        continue;
      }
      report.evaluated += 1;
      const crossing = crosses(rule.name, reading.value, rule.threshold);
      if (crossing && !current) toFire.push(d);
      else if (crossing && current) toKeep.push(d);
      else if (current) toResolve.push({ ...d, id: current.id });
    }
  }
  const at = new Date(now).toISOString();
  if (toFire.length > 0) {
    const rows = rowsOf(toFire).map((r) => ({ ...r, id: crypto.randomUUID() }));
    const res = await db.execute(sql`
      insert into alerts (id, tenant_id, rule, state, value, first_value, threshold, window_hours, events,
        fired_at, evaluated_at)
      select r.id, r.tenant_id, r.rule, 'firing', r.value, r.value, r.threshold, r.window_hours, r.events,
        ${at}::timestamptz, ${at}::timestamptz
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb)
        as r(id uuid, tenant_id text, rule text, value float8, threshold float8, window_hours int, events int)
      on conflict (tenant_id, rule) where state = 'firing' do nothing
      returning *`);
    report.fired = res.rows.map(alertView);
  }
  if (toKeep.length > 0) {
    await db.execute(sql`
      update alerts a set value = r.value, threshold = r.threshold, window_hours = r.window_hours,
        events = r.events, evaluated_at = ${at}::timestamptz
      from jsonb_to_recordset(${JSON.stringify(rowsOf(toKeep))}::jsonb)
        as r(tenant_id text, rule text, value float8, threshold float8, window_hours int, events int)
      where a.tenant_id = r.tenant_id and a.rule = r.rule and a.state = 'firing'`);
    report.still_firing += toKeep.length;
  }
  if (toResolve.length > 0) {
    const rows = toResolve.map((d) => ({ id: d.id, value: d.value, events: d.events }));
    const res = await db.execute(sql`
      update alerts a set state = 'resolved', resolved_at = ${at}::timestamptz, value = r.value,
        events = r.events, evaluated_at = ${at}::timestamptz
      from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id uuid, value float8, events int)
      where a.id = r.id and a.state = 'firing'
      returning a.*`);
    report.resolved = res.rows.map(alertView);
  }
  const byId = new Map(scopes.map((s) => [s.id, s]));
  const notices: AlertNotice[] = [];
  for (const a of [...report.fired, ...report.resolved]) {
    const tenant = byId.get(a.tenant_id);
    const conversations = a.state === "firing" && a.rule === "handoff_wait" ? overdue.get(a.tenant_id) : [];
    if (tenant)
      notices.push(...(await noticesFor(env, tenant, a, now, { conversations, origin: opts.origin })));
  }
  report.notices = notices.length;
  for (let i = 0; i < notices.length; i += 100) {
    await env.NOTIFY_QUEUE.sendBatch(
      notices.slice(i, i + 100).map((body) => ({ body, contentType: "json" as const })),
    );
  }
  if (report.fired.length + report.resolved.length > 0) {
    // The first few by name, and how many: a platform-wide incident must not make a megabyte log line.
    const names = (as: AlertView[]) => as.slice(0, 20).map((a) => `${a.tenant_id}/${a.rule}`);
    console.log(
      JSON.stringify({
        msg: "alerts changed",
        fired: report.fired.length,
        resolved: report.resolved.length,
        first_fired: names(report.fired),
        first_resolved: names(report.resolved),
      }),
    );
  }
  return report;
}

/** Drops per-minute queue lag older than a week: the cron keeps the table small. */
export async function pruneQueueLag(db: SqlExecutor, now: number): Promise<void> {
  await db.execute(
    sql`delete from queue_lag where minute < ${new Date(now - 7 * 86_400_000).toISOString()}::timestamptz`,
  );
}
