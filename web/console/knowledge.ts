/**
 * The Knowledge tab's words and request bodies, apart from the DOM so they are tested in Node
 * (test/web/console-knowledge.test.ts): what a source form sends, what a settings form sends,
 * when the source list is fetched again.
 */
import type {
  KnowledgeSettings,
  KnowledgeSettingsPatch,
  KnowledgeSettingsView,
  KnowledgeSource,
  KnowledgeSourceInput,
  KnowledgeUnanswered,
} from "../../src/api-types";
import type { Session } from "./session";

export type SourceType = KnowledgeSource["type"];

export const TYPE_LABELS: Record<SourceType, string> = {
  markdown: "Markdown",
  text: "Plain text",
  html: "HTML",
  pdf_text: "PDF text",
  qa: "Q&A pairs",
  url: "Web page (URL)",
};

/** Owners, the tenant's key and the admin change knowledge; the API refuses an agent's writes (403). */
export function mayEditKnowledge(session: Session): boolean {
  return session.kind !== "operator" || session.role === "owner";
}

/** Limits the API enforces (src/knowledge/schemas.ts), checked here first so the form names the field. */
const MAX_TITLE = 200;
const MAX_CONTENT = 60_000;
const MAX_PAIRS = 200;

const POLL_FIRST_MS = 2_000;
const POLL_MAX_MS = 15_000;

/**
 * The wait before the source list is fetched again: none when no source is queued or indexing;
 * otherwise 2 s, growing by half each round to 15 s, so a long indexing costs one request per 15 s.
 */
export function nextPollMs(sources: readonly KnowledgeSource[], round: number): number | null {
  if (!sources.some((s) => s.status === "queued" || s.status === "indexing")) return null;
  return Math.min(POLL_MAX_MS, Math.round(POLL_FIRST_MS * 1.5 ** Math.max(0, round)));
}

/** The unanswered questions, newest first (the API ranks the groups by how often they were asked). */
export function newestFirst(questions: KnowledgeUnanswered["questions"]): KnowledgeUnanswered["questions"] {
  return [...questions].sort((a, b) => Date.parse(b.last_asked_at) - Date.parse(a.last_asked_at));
}

/** How much of the indexed content the configured model has embedded; null without a model. */
export function progressText(s: KnowledgeSettingsView): string | null {
  if (s.embedding.provider === "none") return null;
  const { chunks, embedded } = s.embedding_progress;
  const n = chunks.toLocaleString("en-US");
  if (chunks === 0) return "No indexed chunks yet.";
  if (embedded >= chunks) return `All ${n} indexed chunks have vectors of this model.`;
  return `${embedded.toLocaleString("en-US")} of ${n} indexed chunks have vectors of this model; the others are re-embedded in the background and found by keyword only until then.`;
}

type Problems<K extends string> = Partial<Record<K, string>>;
type Outcome<B, K extends string> = { ok: true; body: B } | { ok: false; problems: Problems<K> };

/** What the source form holds, as typed. */
export interface SourceEdit {
  type: SourceType;
  title: string;
  url: string;
  content: string;
  pairs: string;
}
export type SourceField = keyof Omit<SourceEdit, "type">;

function httpUrl(raw: string): boolean {
  try {
    const u = new URL(raw);
    return u.protocol === "http:" || u.protocol === "https:";
  } catch {
    return false;
  }
}

type Pair = { question: string; answer: string };

/**
 * Q&A pairs written as text: a line starting "Q:" opens a question, a line starting "A:" its answer;
 * other lines continue the part they follow. Returns the pairs, or what is wrong.
 */
export function parsePairs(text: string): Pair[] | string {
  const pairs: Pair[] = [];
  let part: "question" | "answer" | null = null;
  for (const line of text.split(/\r?\n/)) {
    const q = /^\s*Q:\s*(.*)$/i.exec(line);
    const a = /^\s*A:\s*(.*)$/i.exec(line);
    const current = pairs[pairs.length - 1];
    if (q) {
      pairs.push({ question: q[1] ?? "", answer: "" });
      part = "question";
    } else if (a) {
      if (!current || part !== "question") return 'each "A:" needs a "Q:" line before it';
      current.answer = a[1] ?? "";
      part = "answer";
    } else if (current && part) {
      current[part] += `\n${line}`;
    } else if (line.trim() !== "") {
      return 'start with a line "Q: <question>"';
    }
  }
  if (pairs.length === 0) return "required";
  if (pairs.length > MAX_PAIRS) return `at most ${MAX_PAIRS} pairs`;
  const out = pairs.map((p) => ({ question: p.question.trim(), answer: p.answer.trim() }));
  const missing = out.findIndex((p) => p.question === "" || p.answer === "");
  if (missing >= 0) return `pair ${missing + 1} needs both a question and an answer`;
  return out;
}

/** The body of a POST (or a PUT, which replaces the whole content) from the form, or its problems. */
export function sourceBody(e: SourceEdit): Outcome<KnowledgeSourceInput, SourceField> {
  const problems: Problems<SourceField> = {};
  const title = e.title.trim();
  const url = e.url.trim();
  if (title === "" && e.type !== "url") problems.title = "required";
  else if (title.length > MAX_TITLE) problems.title = `at most ${MAX_TITLE} characters`;
  if (url === "" && e.type === "url") problems.url = "required";
  else if (url !== "" && !httpUrl(url)) problems.url = "an http(s) URL";
  const link = url === "" ? {} : { url };
  let body: KnowledgeSourceInput | undefined;
  if (e.type === "url") {
    body = { type: "url", url, ...(title === "" ? {} : { title }) };
  } else if (e.type === "qa") {
    const pairs = parsePairs(e.pairs);
    if (typeof pairs === "string") problems.pairs = pairs;
    else body = { type: "qa", title, pairs, ...link };
  } else if (e.content.trim() === "") {
    problems.content = "required";
  } else if (e.content.length > MAX_CONTENT) {
    problems.content = `at most ${MAX_CONTENT.toLocaleString("en-US")} characters`;
  } else {
    body = { type: e.type, title, content: e.content, ...link };
  }
  return body && Object.keys(problems).length === 0 ? { ok: true, body } : { ok: false, problems };
}

/** What the settings form holds, as typed. */
export interface SettingsEdit {
  enabled: boolean;
  unknown_answer_message: string;
  min_score: string;
  max_context_tokens: string;
  min_similarity: string;
  provider: KnowledgeSettings["embedding"]["provider"];
  model: string;
  base_url: string;
  /** A new key; empty keeps the saved one when the model and URL stay. */
  api_key: string;
  remove_key: boolean;
}
export type SettingsField = Exclude<keyof SettingsEdit, "enabled" | "provider" | "remove_key">;

/** The form's values for the settings the API answered (the key is never among them). */
export function editOfSettings(s: KnowledgeSettings): SettingsEdit {
  return {
    enabled: s.enabled,
    unknown_answer_message: s.unknown_answer_message,
    min_score: String(s.min_score),
    max_context_tokens: String(s.max_context_tokens),
    min_similarity: String(s.min_similarity),
    provider: s.embedding.provider,
    model: s.embedding.model ?? "",
    base_url: s.embedding.base_url ?? "",
    api_key: "",
    remove_key: false,
  };
}

function number(raw: string, min: number, max: number, integer = false): number | string {
  const s = raw.trim();
  if (s === "") return "required";
  const n = Number(s);
  if (!Number.isFinite(n)) return "not a number";
  if (integer && !Number.isInteger(n)) return "a whole number";
  if (n < min || n > max) return `between ${min} and ${max}`;
  return n;
}

type EmbeddingPatch = NonNullable<KnowledgeSettingsPatch["embedding"]>;

/**
 * The embedding part of a PATCH, undefined when it does not change. The API replaces the whole
 * embedding setting (an omitted key is no key), so a changed model or URL needs the key typed again.
 */
function embeddingPatch(
  now: KnowledgeSettings["embedding"],
  e: SettingsEdit,
  problems: Problems<SettingsField>,
): EmbeddingPatch | undefined {
  const model = e.model.trim();
  const baseUrl = e.base_url.trim();
  const key = e.api_key.trim();
  if (e.provider === "none") return now.provider === "none" ? undefined : { provider: "none" };
  if (model === "") problems.model = "required";
  if (e.provider === "workers-ai") {
    if (model !== "" && !/^@(cf|hf)\//.test(model)) problems.model = "a Workers AI model id (@cf/...)";
    return now.provider === "workers-ai" && now.model === model
      ? undefined
      : { provider: "workers-ai", model };
  }
  if (baseUrl === "") problems.base_url = "required";
  else if (!httpUrl(baseUrl)) problems.base_url = "an http(s) URL";
  const same = now.provider === "openai" && now.model === model && now.base_url === baseUrl;
  const to = { provider: "openai" as const, model, base_url: baseUrl };
  if (key !== "") return { ...to, api_key: key };
  if (e.remove_key) return same && !now.api_key_set ? undefined : to;
  if (same) return undefined;
  if (now.provider === "openai" && now.api_key_set)
    problems.api_key = "type the key again: a new model or URL replaces the saved key (or remove it)";
  return to;
}

/** The PATCH body for what changed, or the problems found per field. */
export function settingsPatch(
  current: KnowledgeSettings,
  e: SettingsEdit,
): Outcome<KnowledgeSettingsPatch, SettingsField> {
  const problems: Problems<SettingsField> = {};
  const body: KnowledgeSettingsPatch = {};
  if (e.enabled !== current.enabled) body.enabled = e.enabled;
  if (e.unknown_answer_message.length > 1_000) problems.unknown_answer_message = "at most 1000 characters";
  else if (e.unknown_answer_message !== current.unknown_answer_message)
    body.unknown_answer_message = e.unknown_answer_message;
  const numbers = [
    ["min_score", number(e.min_score, 0, 1)],
    ["max_context_tokens", number(e.max_context_tokens, 100, 8_000, true)],
    ["min_similarity", number(e.min_similarity, -1, 1)],
  ] as const;
  for (const [name, n] of numbers) {
    if (typeof n === "string") problems[name] = n;
    else if (n !== current[name]) body[name] = n;
  }
  const embedding = embeddingPatch(current.embedding, e, problems);
  if (embedding) body.embedding = embedding;
  return Object.keys(problems).length === 0 ? { ok: true, body } : { ok: false, problems };
}
