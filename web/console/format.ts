/** How the console writes numbers; null is shown as an em dash ("no data", never a fake 0). */

const DASH = "—";

export function int(n: number | null): string {
  return n === null ? DASH : Math.round(n).toLocaleString("en-US");
}

export function fixed(n: number | null, digits = 1): string {
  return n === null ? DASH : n.toFixed(digits);
}

export function pct(n: number | null): string {
  return n === null ? DASH : `${n.toFixed(1)} %`;
}

export function ms(n: number | null): string {
  return n === null ? DASH : `${Math.round(n).toLocaleString("en-US")} ms`;
}

export function usd(n: number | null): string {
  if (n === null) return DASH;
  return `$${n.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: n < 1 ? 4 : 2 })}`;
}

export function date(iso: string | null): string {
  return iso ? new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" }) : DASH;
}
