/**
 * The tenant's knowledge (docs/knowledge.md): its sources with their indexing status, the form to
 * add or replace one, the retrieval settings and the questions nothing answered. Owners, the
 * tenant's key and the admin write; agents read (the API refuses their writes).
 */
import type { KnowledgeSource, KnowledgeSourceList, KnowledgeUnanswered } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { date, int } from "../format";
import { mayEditKnowledge, newestFirst, nextPollMs, TYPE_LABELS } from "../knowledge";
import { button, errorBox, load, notice, table } from "../ui";
import { settingsForm, sourceForm } from "./knowledge-forms";

const STATE_CLASS: Record<KnowledgeSource["status"], string> = {
  queued: "warning",
  indexing: "warning",
  ready: "ok",
  failed: "failed",
};

const linkOrText = (url: string) =>
  /^https?:\/\//i.test(url)
    ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, url)
    : el("span", {}, url);

/** The Knowledge tab: sources, settings, unanswered questions. */
export function knowledgeView(api: Api, tenantId: string): HTMLElement {
  const path = api.tenantPath(tenantId, "knowledge/sources");
  const manage = mayEditKnowledge(api.session);
  const root = el("section", { class: "knowledge" });
  const list = el("div");
  const status = el("div", { "aria-live": "polite" });
  const editor = el("div");
  const failed = (err: unknown) => status.replaceChildren(errorBox(err));

  // While a source is queued or indexing the list is fetched again, less often as it goes on; the
  // timer stops when none is left and when the view is left (the router has replaced it by then).
  let timer: ReturnType<typeof setTimeout> | undefined;
  let round = 0;
  const poll = (sources: readonly KnowledgeSource[]) => {
    clearTimeout(timer);
    const wait = nextPollMs(sources, round);
    if (wait === null) {
      round = 0;
      return;
    }
    timer = setTimeout(() => {
      round += 1;
      if (root.isConnected) void refresh();
    }, wait);
  };
  const leave = () => {
    if (root.isConnected) return;
    window.removeEventListener("hashchange", leave);
    clearTimeout(timer);
  };
  window.addEventListener("hashchange", leave);

  const actions = (s: KnowledgeSource) => {
    const label = s.title || s.url || s.id;
    return el(
      "div",
      { class: "row-actions" },
      s.type === "url" && s.url
        ? button(
            "Re-index",
            () => {
              const url = s.url ?? "";
              api
                .send<KnowledgeSource>("PUT", `${path}/${s.id}`, {
                  type: "url",
                  url,
                  title: s.title || undefined,
                })
                .then(() => saved(`Re-indexing ${label}.`))
                .catch(failed);
            },
            { "aria-label": `Re-index ${label}` },
          )
        : null,
      button("Update", () => editor.replaceChildren(sourceForm(api, path, s, saved)), {
        "aria-label": `Update ${label}`,
      }),
      button(
        "Delete",
        () => {
          if (!window.confirm(`Delete the source "${label}"? Answers stop using it at once.`)) return;
          api
            .send<KnowledgeSource>("DELETE", `${path}/${s.id}`)
            .then(() => saved(`Deleted ${label}.`))
            .catch(failed);
        },
        { class: "danger", "aria-label": `Delete ${label}` },
      ),
    );
  };

  const refresh = () =>
    load(
      list,
      async () => {
        const { sources } = await api.get<KnowledgeSourceList>(path);
        poll(sources);
        if (sources.length === 0)
          return el("p", {}, manage ? "No sources yet. Add one below." : "No sources yet.");
        return table(
          ["Kind", "Title and link", "Status", "Chunks", "Updated", ...(manage ? ["Actions"] : [])],
          sources.map((s) => [
            TYPE_LABELS[s.type],
            el(
              "div",
              {},
              el("strong", {}, s.title),
              s.url ? el("span", { class: "sub" }, linkOrText(s.url)) : null,
            ),
            el(
              "div",
              { "data-source-status": s.status },
              el("span", { class: `state ${STATE_CLASS[s.status]}` }, s.status),
              s.error ? el("span", { class: "sub" }, s.error) : null,
            ),
            int(s.chunk_count),
            date(s.updated_at),
            ...(manage ? [actions(s)] : []),
          ]),
          "Knowledge sources",
        );
      },
      true,
    );

  const saved = (text: string) => {
    status.replaceChildren(notice(text));
    editor.replaceChildren(sourceForm(api, path, null, saved));
    round = 0;
    void refresh();
  };
  if (manage) editor.replaceChildren(sourceForm(api, path, null, saved));
  void refresh();

  const settings = el("div");
  void load(settings, () => settingsForm(api, tenantId, manage));
  const unanswered = el("div");
  void load(unanswered, async () => {
    const { questions } = await api.get<KnowledgeUnanswered>(
      `${api.tenantPath(tenantId, "knowledge/unanswered")}?limit=500`,
    );
    if (questions.length === 0) return el("p", {}, "No unanswered questions yet.");
    return table(
      ["Question (latest wording)", "Times asked", "Last asked"],
      newestFirst(questions).map((q) => [q.question, int(q.count), date(q.last_asked_at)]),
      "Unanswered questions, newest first",
    );
  });

  root.append(
    el("h2", {}, "Sources"),
    el(
      "p",
      {},
      "The bot searches these on every visitor message and cites what it uses. New and updated sources are indexed in the background; the previous version answers until then.",
    ),
    status,
    list,
    editor,
    el("h2", {}, "Settings"),
    settings,
    el("h2", {}, "Unanswered questions"),
    el(
      "p",
      {},
      'Questions the bot answered with the "I don\'t know" sentence, grouped by their wording: the content to add next.',
    ),
    unanswered,
  );
  return root;
}
