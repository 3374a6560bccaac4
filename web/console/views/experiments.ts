import type { ExperimentList, ExperimentResults } from "../../../src/api-types";
import { el, type Kid } from "../../shared/dom";
import type { Api } from "../api";
import { date, fixed, int, ms, usd } from "../format";
import { load, table } from "../ui";

type Estimate = ExperimentResults["variants"][number]["csat"];

/** The tenant's experiments, each with a link to its results. */
export function experimentsView(api: Api, tenantId: string, base: string): HTMLElement {
  const body = el("div");
  void load(body, async () => {
    const { experiments } = await api.get<ExperimentList>(api.tenantPath(tenantId, "experiments"));
    if (experiments.length === 0)
      return el("p", {}, "No experiments yet. Create them through the API (docs/experiments.md).");
    return table(
      ["Name", "Status", "Variants (split)", "Control", "Starts", "Ends"],
      experiments.map((x) => [
        el("a", { href: `${base}/${encodeURIComponent(x.name)}` }, x.name),
        el("span", { class: `tag ${x.status}` }, x.status),
        x.variants.map((v) => `${v.name} (${Math.round((x.split[v.name] ?? 0) * 100)} %)`).join(", "),
        x.control,
        date(x.starts_at),
        date(x.ends_at),
      ]),
    );
  });
  return el("section", {}, body);
}

function estimate(e: Estimate, scale = 1, digits = 1): string {
  if (!e) return "—";
  const [lo, hi] = e.ci95;
  return `${fixed(e.value * scale, digits)} [${fixed(lo * scale, digits)}, ${fixed(hi * scale, digits)}]`;
}

/** One experiment's results: per-variant outcomes with 95 % intervals, verdicts, the SRM check. */
export function resultsView(api: Api, tenantId: string, name: string, back: string): HTMLElement {
  const body = el("div");
  void load(body, async () => {
    const r = await api.get<ExperimentResults>(
      `${api.tenantPath(tenantId, "experiments")}/${encodeURIComponent(name)}/results`,
    );
    const rows: Kid[][] = r.variants.map((v) => [
      el("strong", {}, v.name + (v.control ? " (control)" : "")),
      `${Math.round(v.split * 100)} %`,
      int(v.users),
      int(v.conversations),
      estimate(v.resolution_rate, 100),
      estimate(v.escalation_rate, 100),
      `${estimate(v.csat, 1, 2)} (n=${v.csat_responses})`,
      v.cost_per_conversation_usd ? usd(v.cost_per_conversation_usd.value) : "—",
      ms(v.p50_latency_ms),
      el("span", { class: `tag ${v.verdict}` }, v.verdict.replace(/_/g, " ")),
    ]);
    return el(
      "div",
      {},
      el(
        "p",
        { class: "muted" },
        `Status ${r.status}; data since ${date(r.since)}; a verdict needs ${r.min_sample_per_arm} conversations per arm.`,
      ),
      r.srm?.flagged
        ? el(
            "div",
            { class: "alert error", role: "alert" },
            `Sample ratio mismatch (p = ${r.srm.p_value.toExponential(2)}): traffic does not follow the split; do not trust the comparisons.`,
          )
        : null,
      table(
        [
          "Variant",
          "Split",
          "Users",
          "Conversations",
          "Resolved % [95 % CI]",
          "Escalated % [95 % CI]",
          "CSAT [95 % CI]",
          "Cost / conv.",
          "P50",
          "Verdict",
        ],
        rows,
        `Results of ${r.experiment}`,
      ),
    );
  });
  return el(
    "section",
    {},
    el("p", {}, el("a", { href: back }, "← All experiments")),
    el("h2", {}, `Experiment ${name}`),
    body,
  );
}
