import type { Usage } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { chartCard, destroyCharts } from "../charts";
import { date, int, usd } from "../format";
import { button, kpi, load } from "../ui";

/** A labelled bar of used against a budget. */
function meter(label: string, used: number, budget: number, text: string): HTMLElement {
  const share = budget > 0 ? Math.min(1, used / budget) : 1;
  return el(
    "div",
    { class: "budget" },
    el("div", { class: "budget-head" }, el("span", {}, label), el("span", {}, text)),
    el("meter", {
      min: "0",
      max: "1",
      low: "0.75",
      high: "0.9",
      optimum: "0",
      value: String(share),
      "aria-label": `${label}: ${text}`,
    }),
  );
}

/** Usage against the budgets: tokens this month, cost today, the rate window, cost per day. */
export function usageView(api: Api, tenantId: string): HTMLElement {
  const body = el("div");
  const refresh = () => {
    destroyCharts();
    void load(body, async () => render(await api.get<Usage>(`${api.tenantPath(tenantId, "usage")}?days=30`)));
  };
  refresh();
  return el("section", {}, el("div", { class: "toolbar" }, button("Refresh", refresh)), body);
}

function render(u: Usage): HTMLElement {
  const m = u.month;
  const used = m.tokens_used + m.tokens_reserved;
  const today = u.today;
  const daily = [...u.daily].reverse();
  return el(
    "div",
    {},
    el("p", { class: "muted" }, `Month ${m.month} in ${u.timezone}; resets ${date(m.resets_at)}.`),
    meter(
      "Tokens this month",
      used,
      m.token_budget,
      `${int(used)} of ${int(m.token_budget)} (${int(m.tokens_left)} left)`,
    ),
    today.budget_usd === null
      ? el("p", {}, `Cost today: ${usd(today.cost_usd)} (no daily budget)`)
      : meter(
          "Cost today",
          today.cost_usd,
          today.budget_usd,
          `${usd(today.cost_usd)} of ${usd(today.budget_usd)} (${usd(today.left_usd)} left)`,
        ),
    el(
      "div",
      { class: "kpis" },
      kpi("month_cost", "Cost this month", usd(m.cost_usd)),
      kpi("total_7d", "Last 7 days", usd(u.total_7d_usd), `${usd(u.avg_daily_7d_usd)} a day`),
      kpi(
        "window",
        "This minute",
        `${int(u.window.tenant_used)} / ${int(u.window.tenant_limit)}`,
        `${int(u.window.active_users)} active users`,
      ),
    ),
    el(
      "div",
      { class: "charts" },
      chartCard({
        title: "Cost per day (USD)",
        kind: "bar",
        labels: daily.map((d) => d.date.slice(5)),
        unit: "USD",
        series: [{ label: "Cost", data: daily.map((d) => d.cost_usd) }],
      }),
      chartCard({
        title: "Tokens per day",
        kind: "bar",
        labels: daily.map((d) => d.date.slice(5)),
        series: [
          { label: "Input", data: daily.map((d) => d.input_tokens) },
          { label: "Output", data: daily.map((d) => d.output_tokens) },
        ],
      }),
    ),
  );
}
