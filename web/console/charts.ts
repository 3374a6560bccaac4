import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  type ChartDataset,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  Tooltip,
} from "chart.js";
import { el } from "../shared/dom";

// Only what the console draws: bar and line charts on category/linear axes, with tooltips and legends.
Chart.register(
  BarController,
  BarElement,
  LineController,
  LineElement,
  PointElement,
  CategoryScale,
  LinearScale,
  Tooltip,
  Legend,
);

export const COLORS = ["#2457d6", "#d97706", "#059669", "#dc2626", "#7c3aed"];

/** Charts on the current page, destroyed on navigation so none keeps listening to resizes. */
const live = new Set<Chart>();

export function destroyCharts(): void {
  for (const c of live) c.destroy();
  live.clear();
}

export interface Series {
  label: string;
  data: (number | null)[];
}

export interface ChartSpec {
  title: string;
  kind: "bar" | "line";
  labels: string[];
  series: Series[];
  /** Fixed y range (CSAT is 1..5, rates 0..100). */
  yMin?: number;
  yMax?: number;
  unit?: string;
}

/** A titled card holding one chart; the canvas has a text alternative naming the figures. */
export function chartCard(spec: ChartSpec): HTMLElement {
  const canvas = el("canvas", {
    role: "img",
    "aria-label": `${spec.title}: ${spec.series.map((s) => s.label).join(", ")}`,
  });
  const card = el(
    "figure",
    { class: "chart" },
    el("figcaption", {}, spec.title),
    el("div", { class: "chart-box" }, canvas),
  );
  const datasets = spec.series.map((s, i): ChartDataset<"bar" | "line", (number | null)[]> => {
    const color = COLORS[i % COLORS.length] ?? "#2457d6";
    return {
      label: s.label,
      data: s.data,
      backgroundColor: color,
      borderColor: color,
      borderWidth: spec.kind === "line" ? 2 : 0,
      pointRadius: spec.kind === "line" ? 3 : 0,
      spanGaps: true,
    };
  });
  const chart = new Chart(canvas, {
    type: spec.kind,
    data: { labels: spec.labels, datasets },
    options: {
      animation: false,
      maintainAspectRatio: false,
      responsive: true,
      plugins: {
        legend: { display: spec.series.length > 1, position: "bottom" },
        tooltip: {
          callbacks: {
            label: (ctx) => `${ctx.dataset.label}: ${ctx.formattedValue}${spec.unit ? ` ${spec.unit}` : ""}`,
          },
        },
      },
      scales: {
        x: { grid: { display: false } },
        y: { beginAtZero: spec.yMin === undefined, min: spec.yMin, max: spec.yMax },
      },
    },
  });
  live.add(chart);
  return card;
}
