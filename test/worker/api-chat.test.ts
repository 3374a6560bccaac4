import { getPath } from "hono/utils/url";
import { describe, expect, it } from "vitest";
import { buildApp } from "../../src/api";
import { buildChatApp } from "../../src/api-chat";
import type { App } from "../../src/app";
import { isChatPath } from "../../src/chat-paths";
import { call } from "./helpers";

/** A route's path pattern as a regex: `:name` (with or without `{pattern}`) one segment, `*` anything. */
function patternOf(path: string): RegExp {
  const body = path
    .split("/")
    .map((seg) => {
      if (seg === "*") return ".*";
      if (seg.startsWith(":")) return "[^/]+";
      return seg.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  return new RegExp(`^${body.replace(/\/\.\*$/, "(?:/.*)?")}$`);
}

/** A request path for a route's pattern: each parameter a segment of its own. */
const sampleOf = (path: string) =>
  path
    .split("/")
    .map((seg) => (seg === "*" ? "any" : seg.startsWith(":") ? "p1" : seg))
    .join("/");

/** The chat's paths that take no parameter. */
const PLAIN_CHAT_PATHS = ["/healthz", "/readyz", "/v1/config", "/v1/chat/completions", "/v1/models"];

/** The app's route entries (handlers and middleware, in order) that a request to `path` meets. */
const meets = (app: App, path: string) =>
  app.routes.filter((r) => patternOf(r.path).test(path)).map((r) => `${r.method} ${r.path}`);

describe("the chat app (src/api-chat.ts) against the whole API", () => {
  const all = buildApp();
  const chat = buildChatApp();

  it("meets the same routes and middleware, in the same order, on every chat path either app serves", () => {
    const samples = [...new Set([...all.routes, ...chat.routes].map((r) => sampleOf(r.path)))].filter(
      isChatPath,
    );
    // The chat's own routes are all there: the widget's, OpenAI's, the conversation API's, health.
    for (const p of [...PLAIN_CHAT_PATHS, "/v1/models/p1"]) expect(samples).toContain(p);
    expect(samples.filter((p) => p.startsWith("/v1/conversations")).length).toBeGreaterThanOrEqual(6);
    for (const p of samples)
      expect({ path: p, routes: meets(chat, p) }).toEqual({ path: p, routes: meets(all, p) });
  });

  it("leaves out every route that is not the chat's", () => {
    expect(chat.routes.length).toBeLessThan(all.routes.length / 3);
    for (const r of chat.routes.filter((x) => x.method !== "ALL")) {
      if (r.path.startsWith("/operator/inbox/")) continue; // the operator's live socket: the same router as the visitor's
      expect(isChatPath(sampleOf(r.path)), r.path).toBe(true);
    }
    expect(all.routes.some((r) => r.path.startsWith("/admin/"))).toBe(true);
    expect(chat.routes.some((r) => r.path.startsWith("/admin/"))).toBe(false);
  });

  it("tells chat paths from the rest by the path alone", () => {
    for (const p of [...PLAIN_CHAT_PATHS, "/v1/models/gpt-4o"]) expect(isChatPath(p), p).toBe(true);
    for (const p of ["/v1/conversations", "/v1/conversations/c1/messages", "/v1/conversations/c1/live"])
      expect(isChatPath(p), p).toBe(true);
    for (const p of [
      "/",
      "/docs",
      "/openapi.json",
      "/v1/usage",
      "/v1/conversationsx",
      "/v1/chat",
      "/admin/tenants",
    ])
      expect(isChatPath(p), p).toBe(false);
    expect(isChatPath("/operator/inbox/c1/live")).toBe(false);
  });

  it("chooses by the path Hono routes on: the query aside, percent-decoded", () => {
    const chosen = (url: string) => isChatPath(getPath(new Request(url)));
    expect(chosen("https://api.example/v1/conversations/c1/messages?stream=1")).toBe(true);
    expect(chosen("http://127.0.0.1:8787/healthz")).toBe(true);
    expect(chosen("http://h/v1/%63onversations/c1/messages")).toBe(true);
    expect(chosen("http://h/admin/tenants?next=/v1/models")).toBe(false);
    expect(chosen("http://h//v1/models")).toBe(false);
  });

  it("answers both kinds of path through the worker, and the rest's 404 as before", async () => {
    expect((await call("/healthz")).status).toBe(200);
    expect((await call("/openapi.json")).status).toBe(200);
    const chat404 = await call("/v1/conversations/c1/nope");
    const other404 = await call("/v1/nope");
    expect([chat404.status, other404.status]).toEqual([404, 404]);
    expect(await chat404.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
    expect(await other404.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
  });
});
