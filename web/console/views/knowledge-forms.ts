/**
 * The Knowledge tab's forms: a source to add or replace (its content is not shown back), and the
 * knowledge settings, whose embedding key is write-only. Both check what they can before sending
 * (web/console/knowledge.ts) and show the server's refusals in its words.
 */
import type { KnowledgeSettings, KnowledgeSettingsView, KnowledgeSource } from "../../../src/api-types";
import { ApiError } from "../../shared/api-error";
import { el } from "../../shared/dom";
import { type Api, issuesOf } from "../api";
import {
  editOfSettings,
  progressText,
  type SettingsEdit,
  type SettingsField,
  type SourceField,
  type SourceType,
  settingsPatch,
  sourceBody,
  TYPE_LABELS,
} from "../knowledge";
import { button, errorBox, notice } from "../ui";

/** A labelled control with a help line that turns into the field's problem when there is one. */
function field(id: string, label: string, control: HTMLElement, help = "", wide = false) {
  const msg = el("span", { class: "field-msg", id: `${id}-msg` }, help);
  control.id = id;
  control.setAttribute("aria-describedby", `${id}-msg`);
  const box = el(
    "div",
    { class: wide ? "field textarea" : "field" },
    el("label", { for: id }, label),
    control,
    msg,
  );
  const mark = (problem: string | undefined) => {
    control.setAttribute("aria-invalid", problem ? "true" : "false");
    msg.textContent = problem ?? help;
    msg.classList.toggle("invalid", Boolean(problem));
  };
  return { box, mark };
}

/** Marks the fields a refusal's issues name; `toField` maps an issue's path to a field's key. */
function markIssues(
  err: unknown,
  fields: Record<string, ReturnType<typeof field>>,
  toField: (path: string) => string,
): void {
  if (err instanceof ApiError) for (const i of issuesOf(err)) fields[toField(i.path)]?.mark(i.message);
}

/** Add a source (`source` null) or replace one's content: the API does not show content back. */
export function sourceForm(
  api: Api,
  path: string,
  source: KnowledgeSource | null,
  onSaved: (text: string) => void,
): HTMLElement {
  const id = (f: string) => `ks-${source ? "edit" : "new"}-${f}`;
  const type = el(
    "select",
    {},
    ...(Object.keys(TYPE_LABELS) as SourceType[]).map((t) => el("option", { value: t }, TYPE_LABELS[t])),
  );
  const title = el("input", { maxlength: "200", autocomplete: "off" });
  const url = el("input", { type: "url", maxlength: "2048", autocomplete: "off" });
  const content = el("textarea", { rows: "8" });
  const pairs = el("textarea", { rows: "8", spellcheck: "true" });
  const fields: Record<SourceField, ReturnType<typeof field>> = {
    title: field(id("title"), "Title", title, "Shown under answers that cite it"),
    url: field(id("url"), "Link (optional)", url, "Shown as the source's link"),
    content: field(
      id("content"),
      "Content",
      content,
      source
        ? "Paste the whole new version: the saved content is not shown back."
        : "Up to 60,000 characters",
      true,
    ),
    pairs: field(
      id("pairs"),
      "Question and answer pairs",
      pairs,
      'A line "Q: question" then a line "A: answer", for each pair (up to 200)',
      true,
    ),
  };
  type.value = source?.type ?? "markdown";
  title.value = source?.title ?? "";
  url.value = source?.url ?? "";
  const show = () => {
    const t = type.value as SourceType;
    fields.content.box.hidden = t === "url" || t === "qa";
    fields.pairs.box.hidden = t !== "qa";
    fields.url.box.querySelector("label")?.replaceChildren(t === "url" ? "Page URL" : "Link (optional)");
    fields.title.box.querySelector("label")?.replaceChildren(t === "url" ? "Title (optional)" : "Title");
  };
  type.addEventListener("change", show);
  show();
  const status = el("div", { "aria-live": "polite" });
  const heading = source ? `Update ${source.title || source.url || "source"}` : "Add a source";
  const save = el(
    "button",
    { type: "submit", class: "primary" },
    source ? "Save and re-index" : "Add source",
  );
  const form = el(
    "form",
    { class: "config", "aria-labelledby": id("heading"), novalidate: "" },
    el("h3", { id: id("heading") }, heading),
    field(id("type"), "Kind", type).box,
    fields.title.box,
    fields.url.box,
    fields.content.box,
    fields.pairs.box,
    el(
      "div",
      { class: "actions" },
      save,
      source ? button("Cancel", () => form.replaceWith(sourceForm(api, path, null, onSaved))) : null,
    ),
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const out = sourceBody({
      type: type.value as SourceType,
      title: title.value,
      url: url.value,
      content: content.value,
      pairs: pairs.value,
    });
    for (const [k, f] of Object.entries(fields)) f.mark(out.ok ? undefined : out.problems[k as SourceField]);
    if (!out.ok) {
      status.replaceChildren(
        el("div", { class: "alert error", role: "alert" }, "Please fix the marked fields."),
      );
      return;
    }
    save.disabled = true;
    const request = source
      ? api.send<KnowledgeSource>("PUT", `${path}/${source.id}`, out.body)
      : api.send<KnowledgeSource>("POST", path, out.body);
    request
      .then((s) =>
        onSaved(`${source ? "Updated" : "Added"} ${s.title || s.url || "the source"}: queued for indexing.`),
      )
      .catch((err: unknown) => {
        markIssues(err, fields, (path) => path.split(".")[0] ?? "");
        status.replaceChildren(errorBox(err));
      })
      .finally(() => {
        save.disabled = false;
      });
  });
  return form;
}

/** The knowledge settings; read-only for agents. The embedding key is write-only: "set" or not. */
export async function settingsForm(api: Api, tenantId: string, manage: boolean): Promise<HTMLElement> {
  const path = api.tenantPath(tenantId, "knowledge/settings");
  const view = await api.get<KnowledgeSettingsView>(path);
  let current: KnowledgeSettings = view;
  const progress = el("p", { class: "muted progress" });
  const showProgress = (v: KnowledgeSettingsView) => {
    const text = progressText(v);
    progress.hidden = text === null;
    progress.textContent = text ?? "";
  };
  showProgress(view);
  const enabled = el("input", { type: "checkbox", id: "ks-enabled" });
  const input = (attrs: Record<string, string> = {}) => el("input", { autocomplete: "off", ...attrs });
  const message = el("textarea", { rows: "2", maxlength: "1000" });
  const minScore = input({ type: "number", step: "0.01", min: "0", max: "1" });
  const maxTokens = input({ type: "number", step: "1", min: "100", max: "8000" });
  const minSimilarity = input({ type: "number", step: "0.01", min: "-1", max: "1" });
  const provider = el(
    "select",
    { id: "ks-provider" },
    el("option", { value: "none" }, "none: keyword search only"),
    el("option", { value: "workers-ai" }, "Workers AI"),
    el("option", { value: "openai" }, "OpenAI-compatible embeddings API"),
  );
  const model = input();
  const baseUrl = input({ type: "url", placeholder: "https://api.openai.com/v1" });
  const apiKey = input({ type: "password", autocomplete: "new-password" });
  const removeKey = el("input", { type: "checkbox", id: "ks-remove-key" });
  const keyState = el("p", { class: "muted", "data-key-state": "" });
  const fields: Record<SettingsField, ReturnType<typeof field>> = {
    unknown_answer_message: field(
      "ks-unknown",
      'The "I don\'t know" answer',
      message,
      "What the bot says when no source answers; empty for the platform's sentence",
      true,
    ),
    min_score: field("ks-min-score", "Minimum keyword score (0-1)", minScore),
    max_context_tokens: field("ks-max-tokens", "Context budget (tokens, 100-8000)", maxTokens),
    min_similarity: field(
      "ks-min-similarity",
      "Minimum similarity (-1 to 1)",
      minSimilarity,
      "Semantic side only",
    ),
    model: field("ks-model", "Embedding model", model),
    base_url: field("ks-base-url", "Embeddings API base URL", baseUrl),
    api_key: field(
      "ks-api-key",
      "API key",
      apiKey,
      "Write-only: never shown again; empty keeps the saved key",
    ),
  };
  const removeBox = el(
    "div",
    { class: "field checkbox" },
    el("label", { for: "ks-remove-key" }, "Remove the saved key"),
    removeKey,
  );
  const show = () => {
    const p = provider.value;
    fields.model.box.hidden = p === "none";
    model.placeholder = p === "workers-ai" ? "@cf/baai/bge-small-en-v1.5" : "text-embedding-3-small";
    for (const f of [fields.base_url.box, keyState]) f.hidden = p !== "openai";
    // The key is write-only: an agent, who cannot write, sees only whether one is set.
    fields.api_key.box.hidden = p !== "openai" || !manage;
    removeBox.hidden = p !== "openai" || !manage || !current.embedding.api_key_set;
  };
  const fill = (s: KnowledgeSettings) => {
    const e = editOfSettings(s);
    enabled.checked = e.enabled;
    message.value = e.unknown_answer_message;
    minScore.value = e.min_score;
    maxTokens.value = e.max_context_tokens;
    minSimilarity.value = e.min_similarity;
    provider.value = e.provider;
    model.value = e.model;
    baseUrl.value = e.base_url;
    apiKey.value = "";
    removeKey.checked = false;
    keyState.textContent = s.embedding.api_key_set ? "API key: set" : "API key: not set";
    show();
  };
  provider.addEventListener("change", show);
  fill(current);

  const status = el("div", { "aria-live": "polite" });
  const save = el("button", { type: "submit", class: "primary" }, "Save settings");
  const form = el(
    "form",
    { class: "knowledge-settings", "aria-label": "Knowledge settings", novalidate: "" },
    el(
      "fieldset",
      manage ? {} : { disabled: "" },
      el("legend", {}, manage ? "Retrieval" : "Retrieval (only owners can change it)"),
      el(
        "div",
        { class: "field checkbox" },
        el("label", { for: "ks-enabled" }, "Answer from the sources"),
        enabled,
      ),
      fields.unknown_answer_message.box,
      fields.min_score.box,
      fields.max_context_tokens.box,
      fields.min_similarity.box,
      field("ks-provider", "Semantic search (embedding model)", provider).box,
      fields.model.box,
      fields.base_url.box,
      keyState,
      fields.api_key.box,
      removeBox,
      progress,
    ),
    manage ? el("div", { class: "actions" }, save) : null,
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const edit: SettingsEdit = {
      enabled: enabled.checked,
      unknown_answer_message: message.value,
      min_score: minScore.value,
      max_context_tokens: maxTokens.value,
      min_similarity: minSimilarity.value,
      provider: provider.value as SettingsEdit["provider"],
      model: model.value,
      base_url: baseUrl.value,
      api_key: apiKey.value,
      remove_key: removeKey.checked,
    };
    const out = settingsPatch(current, edit);
    for (const [k, f] of Object.entries(fields))
      f.mark(out.ok ? undefined : out.problems[k as SettingsField]);
    if (!out.ok) {
      status.replaceChildren(
        el("div", { class: "alert error", role: "alert" }, "Please fix the marked fields."),
      );
      return;
    }
    if (Object.keys(out.body).length === 0) {
      status.replaceChildren(notice("Nothing changed.", "info"));
      return;
    }
    save.disabled = true;
    api
      .send<KnowledgeSettings>("PATCH", path, out.body)
      .then((s) => {
        current = s;
        fill(s);
        // A new model re-embeds in the background: the PATCH answers without progress, the GET has it.
        if (out.body.embedding) void api.get<KnowledgeSettingsView>(path).then(showProgress, () => undefined);
        status.replaceChildren(notice("Saved knowledge settings."));
      })
      .catch((err: unknown) => {
        markIssues(err, fields, (path) => path.replace(/^embedding\./, ""));
        status.replaceChildren(errorBox(err));
      })
      .finally(() => {
        save.disabled = false;
      });
  });
  return form;
}
