import type { Dashboard } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { chartCard, destroyCharts } from "../charts";
import { fixed, int, ms, pct, usd } from "../format";
import { button, kpi, load } from "../ui";

/** A person's reply time: seconds under two minutes, then minutes, then hours. */
function wait(n: number | null): string {
  if (n === null) return "—";
  const s = n / 1000;
  if (s < 120) return `${Math.round(s)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The tenant's dashboard: figures for the window and a chart per figure per day. */
export function dashboardView(api: Api, tenantId: string): HTMLElement {
  const days = el("select", { "aria-label": "Days" });
  for (const d of [7, 30, 90]) days.append(el("option", { value: String(d) }, `Last ${d} days`));
  const body = el("div", { class: "dashboard" });
  const refresh = () => {
    destroyCharts();
    void load(body, async () =>
      render(
        await api.get<Dashboard>(`${api.tenantPath(tenantId, "analytics/dashboard")}?days=${days.value}`),
      ),
    );
  };
  days.addEventListener("change", refresh);
  refresh();
  return el("section", {}, el("div", { class: "toolbar" }, days, button("Refresh", refresh)), body);
}

function render(d: Dashboard): HTMLElement {
  const t = d.totals;
  const labels = d.series.map((s) => s.day.slice(5));
  const col = <K extends keyof Dashboard["totals"]>(k: K) => d.series.map((s) => s[k]);
  return el(
    "div",
    {},
    el(
      "p",
      { class: "muted" },
      `UTC days ${d.from} to ${d.to}. Figures update as the analytics queue flushes.`,
    ),
    el(
      "div",
      { class: "kpis" },
      kpi("total_conversations", "Conversations", int(t.total_conversations)),
      kpi("resolution_rate_pct", "Resolution", pct(t.resolution_rate_pct)),
      kpi("escalation_rate_pct", "Escalation", pct(t.escalation_rate_pct)),
      kpi(
        "avg_csat",
        "Average CSAT",
        fixed(t.avg_csat),
        `${int(t.csat_responses)} ${t.csat_responses === 1 ? "rating" : "ratings"}`,
      ),
      kpi("p50_response_time_ms", "Latency P50", ms(t.p50_response_time_ms)),
      kpi("p99_response_time_ms", "Latency P99", ms(t.p99_response_time_ms)),
      kpi(
        "p50_first_token_ms",
        "First token P50",
        ms(t.p50_first_token_ms),
        `P95 ${ms(t.p95_first_token_ms)}, ${int(t.streamed_answers)} streamed`,
      ),
      kpi(
        "total_cost_usd",
        "Cost",
        usd(t.total_cost_usd),
        `${usd(t.cost_per_conversation_usd)} per conversation`,
      ),
      kpi(
        "human_handled_conversations",
        "Handled by humans",
        int(t.human_handled_conversations),
        `${pct(t.human_handled_pct)} of conversations`,
      ),
      kpi(
        "resolved_by_human_pct",
        "Resolved by humans",
        pct(t.resolved_by_human_pct),
        `by the bot ${pct(t.resolved_by_bot_pct)}`,
      ),
      kpi(
        "p50_first_human_reply_ms",
        "First human reply P50",
        wait(t.p50_first_human_reply_ms),
        `P95 ${wait(t.p95_first_human_reply_ms)}, mean ${wait(t.avg_first_human_reply_ms)}, ${int(t.human_replies)} answered`,
      ),
      kpi(
        "total_turns",
        "Messages",
        int(t.total_turns),
        `${pct(t.error_rate_pct)} errors, ${int(t.disconnected_turns)} left mid-answer`,
      ),
    ),
    el(
      "div",
      { class: "charts" },
      chartCard({
        title: "Conversations per day",
        kind: "bar",
        labels,
        series: [{ label: "Conversations", data: col("total_conversations") }],
      }),
      chartCard({
        title: "Resolution and escalation",
        kind: "line",
        labels,
        yMin: 0,
        yMax: 100,
        unit: "%",
        series: [
          { label: "Resolved %", data: col("resolution_rate_pct") },
          { label: "Escalated %", data: col("escalation_rate_pct") },
        ],
      }),
      chartCard({
        title: "Resolved by humans and by the bot",
        kind: "line",
        labels,
        yMin: 0,
        yMax: 100,
        unit: "%",
        series: [
          { label: "By humans %", data: col("resolved_by_human_pct") },
          { label: "By the bot %", data: col("resolved_by_bot_pct") },
        ],
      }),
      chartCard({
        title: "Average CSAT",
        kind: "line",
        labels,
        yMin: 1,
        yMax: 5,
        series: [{ label: "CSAT", data: col("avg_csat") }],
      }),
      chartCard({
        title: "Response time",
        kind: "line",
        labels,
        unit: "ms",
        series: [
          { label: "P50", data: col("p50_response_time_ms") },
          { label: "P99", data: col("p99_response_time_ms") },
        ],
      }),
      chartCard({
        title: "Cost per day (USD)",
        kind: "bar",
        labels,
        unit: "USD",
        series: [{ label: "Cost", data: col("total_cost_usd") }],
      }),
    ),
  );
}
