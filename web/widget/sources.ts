import type { Reply } from "../../src/api-types";
import { el } from "../shared/dom";
import { safeHref } from "./markdown";

/** A source an answer cites (the conversation API's `sources`). */
export type AnswerSource = Reply["sources"][number];

/** What the list shows of each source: its title, and a link only for an absolute http(s) URL. */
export function sourceItems(sources: readonly AnswerSource[]): { title: string; href?: string }[] {
  return sources.map((s) => {
    const href = s.url ? safeHref(s.url) : undefined;
    const title = s.title || s.url || "";
    return href && /^https?:/.test(href) ? { title, href } : { title };
  });
}

/**
 * The cited sources under an answer, built node by node (titles as text, never markup): a link that
 * opens in a new tab, or the title alone. Replaces an earlier list of the same answer; no list
 * when nothing was cited.
 */
export function showSources(answer: HTMLElement, sources: readonly AnswerSource[], label: string): void {
  answer.querySelector(":scope > .sources")?.remove();
  if (sources.length === 0) return;
  const list = el("ul", { class: "sources", "aria-label": label });
  for (const s of sourceItems(sources)) {
    const link =
      s.href && el("a", { href: s.href, target: "_blank", rel: "noopener noreferrer nofollow" }, s.title);
    list.append(el("li", {}, link || s.title));
  }
  answer.append(list);
}
