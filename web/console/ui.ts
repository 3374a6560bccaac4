import { ApiError } from "../shared/api-error";
import { el, type Kid } from "../shared/dom";
import { issuesOf } from "./api";

/** A box explaining a failure: the server's envelope message, its code, the field problems. */
export function errorBox(err: unknown): HTMLElement {
  if (err instanceof ApiError) {
    const issues = issuesOf(err);
    return el(
      "div",
      { class: "alert error", role: "alert" },
      el("strong", {}, err.message),
      " ",
      el(
        "span",
        { class: "muted" },
        `(${err.status} ${err.code}${err.requestId ? `, request ${err.requestId}` : ""})`,
      ),
      issues.length > 0 &&
        el("ul", {}, ...issues.map((i) => el("li", {}, i.path ? `${i.path}: ${i.message}` : i.message))),
    );
  }
  return el("div", { class: "alert error", role: "alert" }, el("strong", {}, String(err)));
}

/** A notice for success or information. */
export function notice(text: string, kind: "ok" | "info" = "ok"): HTMLElement {
  return el("div", { class: `alert ${kind}`, role: "status" }, text);
}

/** A button with a click handler. */
export function button(
  label: string,
  onClick: () => void,
  attrs: Record<string, string> = {},
): HTMLButtonElement {
  const b = el("button", { type: "button", ...attrs }, label);
  b.addEventListener("click", onClick);
  return b;
}

/** A table from header names and rows of cells. */
export function table(head: string[], rows: Kid[][], caption?: string): HTMLTableElement {
  return el(
    "table",
    {},
    caption ? el("caption", {}, caption) : null,
    el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...rows.map((r) => el("tr", {}, ...r.map((c) => el("td", {}, c))))),
  );
}

/** A labelled figure tile, `data-kpi` naming it for tests and scripts. */
export function kpi(id: string, label: string, value: string, sub?: string): HTMLElement {
  return el(
    "div",
    { class: "kpi", "data-kpi": id },
    el("span", { class: "kpi-label" }, label),
    el("span", { class: "kpi-value" }, value),
    sub ? el("span", { class: "kpi-sub" }, sub) : null,
  );
}

/**
 * Runs a loader into `target`: a loading line first, then its content or the error. With `keep`,
 * content already there stays until the new arrives (a refresh does not make the page jump).
 */
export async function load(target: HTMLElement, fn: () => Promise<Node>, keep = false): Promise<void> {
  if (!keep || !target.hasChildNodes())
    target.replaceChildren(el("p", { class: "muted", role: "status" }, "Loading…"));
  target.setAttribute("aria-busy", "true");
  try {
    target.replaceChildren(await fn());
  } catch (err) {
    target.replaceChildren(errorBox(err));
  } finally {
    target.removeAttribute("aria-busy");
  }
}
