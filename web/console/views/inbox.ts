/**
 * The inbox (docs/handoff.md): the tenant's conversations, newest activity first, with status,
 * channel, variant, CSAT and cost; filters and full-text search over the messages; "Load more"
 * follows the list's cursor. A row opens the conversation (views/conversation.ts).
 */
import type { InboxItem, InboxPage, InboxStatus } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { int, usd } from "../format";
import { button, errorBox, table } from "../ui";

export const STATUS_LABELS: Record<InboxStatus, string> = {
  open: "open",
  waiting: "waiting for a human",
  human: "with a human",
  resolved: "resolved",
  ended: "ended",
};

const PAGE = 25;

/** A time as the inbox shows it: today's as a time, older ones with their date. */
export function when(ms: number | null): string {
  if (ms === null) return "—";
  const d = new Date(ms);
  const today = new Date().toDateString() === d.toDateString();
  return today
    ? d.toLocaleTimeString("en-GB", { timeStyle: "short" })
    : d.toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
}

/** The query string of the filters set (empty ones left out). */
export function inboxQuery(f: Record<string, string>, cursor: string | null): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(f)) if (v.trim() !== "") q.set(k, v.trim());
  q.set("limit", String(PAGE));
  if (cursor) q.set("cursor", cursor);
  return q.toString();
}

/** The list with its filters; `base` is the tenant's hash prefix (`#/t/<id>`). */
export function inboxView(api: Api, tenantId: string, base: string): HTMLElement {
  const path = api.tenantPath(tenantId, "inbox");
  const field = (id: string, label: string, input: HTMLElement) =>
    el("div", { class: "field" }, el("label", { for: id }, label), input);
  const q = el("input", {
    id: "inbox-q",
    type: "search",
    maxlength: "200",
    placeholder: "words in messages",
  });
  const status = el(
    "select",
    { id: "inbox-status" },
    el("option", { value: "" }, "any"),
    ...(Object.keys(STATUS_LABELS) as InboxStatus[]).map((s) => el("option", { value: s }, STATUS_LABELS[s])),
  ) as HTMLSelectElement;
  const channel = el("input", { id: "inbox-channel", maxlength: "32", placeholder: "web, api, …" });
  const variant = el("input", { id: "inbox-variant", maxlength: "512" });
  const filters = el(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter conversations" },
    field("inbox-q", "Search", q),
    field("inbox-status", "Status", status),
    field("inbox-channel", "Channel", channel),
    field("inbox-variant", "Variant", variant),
    el("button", { type: "submit", class: "primary" }, "Apply"),
  );

  const rows = el("div");
  const more = el("div");
  const live = el("p", { class: "muted", role: "status", "aria-live": "polite" });
  let items: InboxItem[] = [];
  let cursor: string | null = null;
  let generation = 0;

  const values = () => ({
    q: (q as HTMLInputElement).value,
    status: status.value,
    channel: (channel as HTMLInputElement).value,
    variant: (variant as HTMLInputElement).value,
  });

  const render = () => {
    if (items.length === 0) {
      rows.replaceChildren(el("p", {}, "No conversations match."));
    } else {
      rows.replaceChildren(
        table(
          [
            "Conversation",
            "Status",
            "Channel",
            "Variant",
            "CSAT",
            "Cost",
            "Turns",
            "Last activity",
            "Latest message",
          ],
          items.map((i) => [
            el("a", { href: `${base}/inbox/${encodeURIComponent(i.id)}`, "data-conversation": i.id }, i.id),
            el(
              "span",
              { class: `status status-${i.status}`, "data-status": i.status },
              i.holder ? `${STATUS_LABELS[i.status]} (${i.holder.name})` : STATUS_LABELS[i.status],
              i.waiting_since !== null
                ? el("span", { class: "muted" }, ` since ${when(i.waiting_since)}`)
                : null,
            ),
            i.channel,
            i.variant ?? "—",
            i.csat === null ? "—" : String(i.csat),
            usd(i.total_cost_usd),
            int(i.turns),
            when(i.last_activity_at),
            el("span", { class: "preview" }, i.preview),
          ]),
          "Conversations",
        ),
      );
    }
    more.replaceChildren(cursor ? button("Load more", () => void fetchPage(true)) : "");
    live.textContent = `${items.length} conversation${items.length === 1 ? "" : "s"} shown${cursor ? ", more to load" : ""}.`;
  };

  // A later search replaces the list; an answer to an earlier one arriving after it is dropped.
  const fetchPage = async (append: boolean) => {
    const mine = ++generation;
    if (!append) rows.replaceChildren(el("p", { class: "muted", role: "status" }, "Loading…"));
    try {
      const page = await api.get<InboxPage>(`${path}?${inboxQuery(values(), append ? cursor : null)}`);
      if (mine !== generation) return;
      items = append ? [...items, ...page.data] : page.data;
      cursor = page.next_cursor;
      render();
    } catch (err) {
      if (mine === generation) rows.replaceChildren(errorBox(err));
    }
  };

  filters.addEventListener("submit", (e) => {
    e.preventDefault();
    void fetchPage(false);
  });
  void fetchPage(false);
  return el("div", { class: "inbox" }, el("h2", {}, "Inbox"), filters, live, rows, more);
}
