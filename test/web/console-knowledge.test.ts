import { describe, expect, it } from "vitest";
import type { KnowledgeSettings, KnowledgeSource } from "../../src/api-types";
import { SettingsPatch, SourceInput } from "../../src/knowledge/schemas";
import {
  editOfSettings,
  mayEditKnowledge,
  newestFirst,
  nextPollMs,
  parsePairs,
  progressText,
  type SourceEdit,
  settingsPatch,
  sourceBody,
} from "../../web/console/knowledge";

const source = (status: KnowledgeSource["status"]): KnowledgeSource => ({
  id: "6f1c8f5e-9d3b-4c59-8a8e-1f2d3c4b5a69",
  type: "markdown",
  title: "Shipping",
  url: null,
  status,
  error: status === "failed" ? "too many chunks" : null,
  version: 1,
  chunk_count: 3,
  created_at: "2026-12-01T10:00:00.000Z",
  updated_at: "2026-12-01T10:00:00.000Z",
  indexed_at: null,
});

const edit = (o: Partial<SourceEdit>): SourceEdit => ({
  type: "markdown",
  title: "",
  url: "",
  content: "",
  pairs: "",
  ...o,
});

const settings = (embedding: Partial<KnowledgeSettings["embedding"]> = {}): KnowledgeSettings => ({
  enabled: true,
  unknown_answer_message: "",
  min_score: 0.1,
  max_context_tokens: 1500,
  min_similarity: 0.3,
  embedding: { provider: "none", model: null, base_url: null, api_key_set: false, ...embedding },
});

const OPENAI = {
  provider: "openai",
  model: "text-embedding-3-small",
  base_url: "https://api.openai.com/v1",
  api_key_set: true,
} as const;

/** The body the form would send, checked against the API's own schema. */
function accepted<T>(
  out: { ok: true; body: T } | { ok: false; problems: unknown },
  schema: typeof SourceInput | typeof SettingsPatch,
): T {
  if (!out.ok) throw new Error(`refused: ${JSON.stringify(out.problems)}`);
  const parsed = schema.safeParse(out.body);
  if (!parsed.success)
    throw new Error(`the API would refuse ${JSON.stringify(out.body)}: ${parsed.error.message}`);
  return out.body;
}

describe("the console's knowledge sources", () => {
  it("sends a document, Q&A pairs or a URL as the API takes them", () => {
    expect(
      accepted(
        sourceBody(edit({ type: "pdf_text", title: " Manual ", content: "Page one\fPage two" })),
        SourceInput,
      ),
    ).toEqual({ type: "pdf_text", title: "Manual", content: "Page one\fPage two" });
    expect(
      accepted(
        sourceBody(
          edit({ type: "html", title: "FAQ", content: "<h1>FAQ</h1>", url: " https://shop.example/faq " }),
        ),
        SourceInput,
      ),
    ).toEqual({ type: "html", title: "FAQ", content: "<h1>FAQ</h1>", url: "https://shop.example/faq" });
    expect(
      accepted(
        sourceBody(
          edit({
            type: "qa",
            title: "Returns",
            pairs: "Q: How long?\nA: 30 days.\n\nq: Who pays?\na: We do.",
          }),
        ),
        SourceInput,
      ),
    ).toEqual({
      type: "qa",
      title: "Returns",
      pairs: [
        { question: "How long?", answer: "30 days." },
        { question: "Who pays?", answer: "We do." },
      ],
    });
    // A URL's title is optional: the API then names the source by its URL.
    expect(
      accepted(sourceBody(edit({ type: "url", url: "http://127.0.0.1:8080/faq.html" })), SourceInput),
    ).toEqual({
      type: "url",
      url: "http://127.0.0.1:8080/faq.html",
    });
  });

  it("names what is wrong, per field, and sends nothing", () => {
    expect(sourceBody(edit({ type: "markdown" }))).toEqual({
      ok: false,
      problems: { title: "required", content: "required" },
    });
    expect(sourceBody(edit({ type: "text", title: "x".repeat(201), content: "hi", url: "ftp://x" }))).toEqual(
      {
        ok: false,
        problems: { title: "at most 200 characters", url: "an http(s) URL" },
      },
    );
    expect(sourceBody(edit({ type: "text", title: "Big", content: "x".repeat(60_001) }))).toEqual({
      ok: false,
      problems: { content: "at most 60,000 characters" },
    });
    expect(sourceBody(edit({ type: "url", title: "Page" }))).toEqual({
      ok: false,
      problems: { url: "required" },
    });
    expect(sourceBody(edit({ type: "qa", title: "Q", pairs: "Q: only a question" }))).toEqual({
      ok: false,
      problems: { pairs: "pair 1 needs both a question and an answer" },
    });
  });

  it("reads Q&A pairs written as text", () => {
    expect(parsePairs("Q: Do you ship\nto Norway?\nA: Yes,\nin 5 to 8 days.")).toEqual([
      { question: "Do you ship\nto Norway?", answer: "Yes,\nin 5 to 8 days." },
    ]);
    expect(parsePairs("  \n")).toBe("required");
    expect(parsePairs("Shipping is free\nQ: x\nA: y")).toBe('start with a line "Q: <question>"');
    expect(parsePairs("Q: x\nA: y\nA: z")).toBe('each "A:" needs a "Q:" line before it');
    expect(parsePairs("Q: x\nA: y\n".repeat(201))).toBe("at most 200 pairs");
    expect(parsePairs("Q: x\nA: y\n".repeat(200))).toHaveLength(200);
  });

  it("polls while a source is queued or indexing, less often as it goes on, and stops when none is", () => {
    expect(nextPollMs([source("ready"), source("failed")], 0)).toBeNull();
    expect(nextPollMs([], 3)).toBeNull();
    expect([0, 1, 2, 3, 4, 5, 20].map((r) => nextPollMs([source("ready"), source("queued")], r))).toEqual([
      2000, 3000, 4500, 6750, 10125, 15000, 15000,
    ]);
    expect(nextPollMs([source("indexing")], 0)).toBe(2000);
  });

  it("lists unanswered questions newest first", () => {
    const q = (question: string, count: number, last_asked_at: string) => ({
      question,
      normalized: question.toLowerCase(),
      count,
      last_asked_at,
    });
    const api = [
      q("Gift cards?", 9, "2026-12-01T10:00:00.000Z"),
      q("Do you ship to Mars?", 2, "2026-12-03T10:00:00.000Z"),
      q("Student discount?", 2, "2026-12-02T10:00:00.000Z"),
    ];
    expect(newestFirst(api).map((x) => x.question)).toEqual([
      "Do you ship to Mars?",
      "Student discount?",
      "Gift cards?",
    ]);
    expect(api[0]?.question).toBe("Gift cards?");
  });

  it("lets owners, the tenant key and the admin write; agents read", () => {
    const operator = (role: "owner" | "agent") =>
      ({ kind: "operator", tenantId: "t", operatorId: "o", name: "n", email: "e", role, csrf: "c" }) as const;
    expect(mayEditKnowledge({ kind: "admin", token: "x" })).toBe(true);
    expect(mayEditKnowledge({ kind: "tenant", token: "sk", tenantId: "t", name: "T" })).toBe(true);
    expect(mayEditKnowledge(operator("owner"))).toBe(true);
    expect(mayEditKnowledge(operator("agent"))).toBe(false);
  });
});

describe("the console's knowledge settings", () => {
  it("sends only what changed", () => {
    const now = settings();
    expect(settingsPatch(now, editOfSettings(now))).toEqual({ ok: true, body: {} });
    const e = {
      ...editOfSettings(now),
      enabled: false,
      unknown_answer_message: "Ask us by email.",
      min_score: " 0.25 ",
    };
    expect(accepted(settingsPatch(now, e), SettingsPatch)).toEqual({
      enabled: false,
      unknown_answer_message: "Ask us by email.",
      min_score: 0.25,
    });
  });

  it("names what is wrong, per field", () => {
    const e = {
      ...editOfSettings(settings()),
      min_score: "1.5",
      max_context_tokens: "99.5",
      min_similarity: "",
      unknown_answer_message: "x".repeat(1_001),
      provider: "workers-ai" as const,
      model: "bge-small",
    };
    expect(settingsPatch(settings(), e)).toEqual({
      ok: false,
      problems: {
        min_score: "between 0 and 1",
        max_context_tokens: "a whole number",
        min_similarity: "required",
        unknown_answer_message: "at most 1000 characters",
        model: "a Workers AI model id (@cf/...)",
      },
    });
    expect(
      settingsPatch(settings(), { ...editOfSettings(settings()), provider: "openai", base_url: "ftp://x" }),
    ).toEqual({
      ok: false,
      problems: { model: "required", base_url: "an http(s) URL" },
    });
  });

  it("sets and switches off the embedding model", () => {
    const none = settings();
    const workersAi = {
      ...editOfSettings(none),
      provider: "workers-ai" as const,
      model: "@cf/baai/bge-small-en-v1.5",
    };
    expect(accepted(settingsPatch(none, workersAi), SettingsPatch)).toEqual({
      embedding: { provider: "workers-ai", model: "@cf/baai/bge-small-en-v1.5" },
    });
    const withKey = {
      ...editOfSettings(none),
      provider: "openai" as const,
      model: "text-embedding-3-small",
      base_url: "https://api.openai.com/v1",
      api_key: " sk-test ",
    };
    expect(accepted(settingsPatch(none, withKey), SettingsPatch)).toEqual({
      embedding: {
        provider: "openai",
        model: "text-embedding-3-small",
        base_url: "https://api.openai.com/v1",
        api_key: "sk-test",
      },
    });
    const on = settings(OPENAI);
    expect(accepted(settingsPatch(on, { ...editOfSettings(on), provider: "none" }), SettingsPatch)).toEqual({
      embedding: { provider: "none" },
    });
  });

  it("never shows the key, keeps it when left empty, and asks for it again when the model changes", () => {
    const on = settings(OPENAI);
    const e = editOfSettings(on);
    expect(e.api_key).toBe("");
    // Left empty with the same model and URL: the embedding is not sent, so the saved key stays.
    expect(settingsPatch(on, e)).toEqual({ ok: true, body: {} });
    // The API replaces the whole embedding setting: a new model without the key would drop it.
    expect(settingsPatch(on, { ...e, model: "text-embedding-3-large" })).toEqual({
      ok: false,
      problems: { api_key: "type the key again: a new model or URL replaces the saved key (or remove it)" },
    });
    expect(
      accepted(
        settingsPatch(on, { ...e, model: "text-embedding-3-large", api_key: "sk-new" }),
        SettingsPatch,
      ),
    ).toEqual({
      embedding: {
        provider: "openai",
        model: "text-embedding-3-large",
        base_url: OPENAI.base_url,
        api_key: "sk-new",
      },
    });
    expect(accepted(settingsPatch(on, { ...e, remove_key: true }), SettingsPatch)).toEqual({
      embedding: { provider: "openai", model: OPENAI.model, base_url: OPENAI.base_url },
    });
    // Without a saved key (a local embedder), a new model needs none.
    const keyless = settings({ ...OPENAI, api_key_set: false });
    expect(settingsPatch(keyless, { ...editOfSettings(keyless), remove_key: true })).toEqual({
      ok: true,
      body: {},
    });
    expect(
      accepted(
        settingsPatch(keyless, { ...editOfSettings(keyless), base_url: "http://127.0.0.1:8796/v1" }),
        SettingsPatch,
      ),
    ).toEqual({
      embedding: { provider: "openai", model: OPENAI.model, base_url: "http://127.0.0.1:8796/v1" },
    });
  });

  it("says how much the model has embedded, and nothing without a model", () => {
    const view = (embedded: number, chunks: number, provider = OPENAI) => ({
      ...settings(provider),
      embedding_progress: { chunks, embedded },
    });
    expect(progressText({ ...settings(), embedding_progress: { chunks: 12, embedded: 0 } })).toBeNull();
    expect(progressText(view(0, 0))).toBe("No indexed chunks yet.");
    expect(progressText(view(1200, 1200))).toBe("All 1,200 indexed chunks have vectors of this model.");
    expect(progressText(view(812, 1200))).toBe(
      "812 of 1,200 indexed chunks have vectors of this model; the others are re-embedded in the background and found by keyword only until then.",
    );
  });
});
