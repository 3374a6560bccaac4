/**
 * A fake LLM server speaking the real wire protocols: OpenAI `POST /v1/chat/completions` and
 * Anthropic `POST /v1/messages`, streaming (SSE, event shapes as the real APIs send them) and not.
 * Replies are deterministic: "Fake <protocol> reply: <last user text>", one SSE chunk per word;
 * usage counts words (input: every word of system and messages; output: chunks emitted), so tests
 * can predict it exactly. A user message naming one of the request's tools gets a tool call. A
 * question ("?") when the system text asks for the tenant's "I don't know" sentence (src/knowledge,
 * no references given) gets exactly that sentence.
 *
 * Faults, chosen per request, first match wins:
 *  1. header `x-fake-fault: <spec>`;
 *  2. a queue filled by `POST /__control {"key"?: "...", "faults": ["<spec>", ...]}`, one fault per
 *     request, for requests carrying that API key (Bearer or x-api-key), or any request without "key";
 *  3. a marker `[[fault:<spec>]]` in the last user message (every attempt then fails alike).
 * Specs: "500" (any status), "429:2" (retry-after: 2), "429ms:300" (retry-after-ms), "hang" (never
 * answers), "cut" (half the stream, then the socket closes), "slow:800" (headers, then 800 ms of
 * silence before the first token), "pace:20" (a stream's events written one at a time, 20 ms apart, as
 * a model sends tokens while it makes them: each reaches the worker in a read of its own; a body
 * that is not streamed is answered as usual). `[[nousage]]` drops OpenAI's usage chunk; `[[noids]]` sends a tool
 * call without its id (as some OpenAI-compatible servers do). Keys starting with
 * "sk-bad" or "sk-ant-bad" get a 401 that quotes the key whole (callers must redact it).
 * `POST /v1/embeddings` is the local embedding model (local/embedder.ts); of the faults, only status
 * faults queued for the request's key apply to it.
 * `GET /__stats` counts requests per path, overall and per key; `GET /__requests?key=` shows recent
 * bodies; `POST /__reset` clears everything. Usage: node local/fake-llm.ts [--port 8790]
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { serveEmbeddings } from "./embedder.ts";
import {
  anthropicEvents,
  anthropicMessage,
  errorBody,
  type Json,
  openAiCompletion,
  openAiEvents,
  type Protocol,
  plan,
  turnsOf,
} from "./fake-llm-wire.ts";
import { listen } from "./ports.ts";

export type Fault =
  | { kind: "status"; status: number; retryAfter?: number; retryAfterMs?: number }
  | { kind: "hang" }
  | { kind: "cut" }
  | { kind: "slow"; ms: number }
  | { kind: "pace"; ms: number };

export type FakeLlm = { port: number; url: string; close(): Promise<void> };

const FAULT_MARKER = /\[\[fault:([^\]]+)\]\]/;

/** Parses a fault spec; undefined when it is not one. */
export function parseFault(spec: string): Fault | undefined {
  const [head = "", arg] = spec.trim().split(":");
  if (head === "hang" || head === "cut") return { kind: head };
  if (head === "slow") return { kind: "slow", ms: Number(arg ?? 1000) };
  if (head === "pace") return { kind: "pace", ms: Number(arg ?? 20) };
  if (head === "429ms") return { kind: "status", status: 429, retryAfterMs: Number(arg ?? 0) };
  const status = Number(head);
  if (!Number.isInteger(status) || status < 400 || status > 599) return undefined;
  return arg === undefined ? { kind: "status", status } : { kind: "status", status, retryAfter: Number(arg) };
}

/** Starts the fake; resolves once it listens (port 0 picks a free port). */
export async function startFakeLlm(opts: { port?: number; host?: string } = {}): Promise<FakeLlm> {
  const host = opts.host ?? "127.0.0.1";
  const counts = new Map<string, Map<string, number>>();
  const queues = new Map<string, Fault[]>();
  const recent: Json[] = [];
  const hanging = new Set<ServerResponse>();
  let reqNo = 0;

  const bump = (key: string, path: string) => {
    for (const k of [key, "*"]) {
      const m = counts.get(k) ?? new Map<string, number>();
      m.set(path, (m.get(path) ?? 0) + 1);
      counts.set(k, m);
    }
  };
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  function faultFor(req: IncomingMessage, key: string, body: Json): Fault | undefined {
    const header = req.headers["x-fake-fault"];
    if (typeof header === "string") return parseFault(header);
    const queued = queues.get(key)?.shift() ?? queues.get("*")?.shift();
    if (queued) return queued;
    const turns = turnsOf(body);
    const m = FAULT_MARKER.exec(turns[turns.length - 1]?.text ?? "");
    return m?.[1] ? parseFault(m[1]) : undefined;
  }

  async function model(proto: Protocol, req: IncomingMessage, res: ServerResponse, raw: string) {
    const h = req.headers;
    const key =
      proto === "openai" ? (h.authorization ?? "").replace(/^Bearer\s+/i, "") : String(h["x-api-key"] ?? "");
    let body: Json;
    try {
      body = JSON.parse(raw) as Json;
    } catch {
      return send(res, 400, errorBody(proto, 400, "We could not parse the JSON body of your request."));
    }
    bump(key || "-", req.url ?? "");
    recent.push({
      path: req.url,
      key,
      headers: { "anthropic-version": h["anthropic-version"], accept: h.accept },
      body,
    });
    if (recent.length > 200) recent.shift();
    reqNo += 1;
    if (proto === "anthropic" && !key)
      return send(res, 401, errorBody(proto, 401, "x-api-key header is required"));
    if (proto === "anthropic" && !h["anthropic-version"]) {
      return send(res, 400, errorBody(proto, 400, "anthropic-version: header is required"));
    }
    if (key.startsWith("sk-bad") || key.startsWith("sk-ant-bad")) {
      // The real APIs mask the key they quote; quoting it whole tests that callers redact it.
      return send(res, 401, errorBody(proto, 401, `Incorrect API key provided: ${key}.`));
    }
    if (typeof body.model !== "string" || !Array.isArray(body.messages)) {
      return send(res, 400, errorBody(proto, 400, "model and messages are required"));
    }
    if (proto === "anthropic" && typeof body.max_tokens !== "number") {
      return send(res, 400, errorBody(proto, 400, "max_tokens: Field required"));
    }
    const fault = faultFor(req, key, body);
    if (fault?.kind === "hang") {
      hanging.add(res);
      res.on("close", () => hanging.delete(res));
      return;
    }
    if (fault?.kind === "status") {
      const headers: Record<string, string> = {};
      if (fault.retryAfter !== undefined) headers["retry-after"] = String(fault.retryAfter);
      if (fault.retryAfterMs !== undefined) {
        headers["retry-after-ms"] = String(fault.retryAfterMs);
        headers["retry-after"] = String(Math.ceil(fault.retryAfterMs / 1000));
      }
      return send(
        res,
        fault.status,
        errorBody(proto, fault.status, `Injected fault: HTTP ${fault.status}`),
        headers,
      );
    }
    const modelName = body.model;
    const p = plan(proto, body, reqNo);
    const id = proto === "openai" ? `chatcmpl-fake-${reqNo}` : `msg_fake_${reqNo}`;
    const requestId = { [proto === "openai" ? "x-request-id" : "request-id"]: `req_fake_${reqNo}` };
    const streaming = body.stream === true;
    if (fault?.kind === "slow") {
      if (streaming) {
        res.writeHead(200, {
          "content-type": "text/event-stream; charset=utf-8",
          "cache-control": "no-cache",
          ...requestId,
        });
        res.flushHeaders();
      }
      await new Promise((r) => setTimeout(r, fault.ms));
      if (res.destroyed) return;
    }
    if (!streaming) {
      const json = JSON.stringify(
        proto === "openai" ? openAiCompletion(p, modelName, id) : anthropicMessage(p, modelName, id),
      );
      res.writeHead(200, {
        "content-type": "application/json",
        "content-length": Buffer.byteLength(json),
        ...requestId,
      });
      if (fault?.kind === "cut")
        return res.write(json.slice(0, json.length >> 1), () => setTimeout(() => res.destroy(), 20));
      return res.end(json);
    }
    const include = proto === "openai" && (body.stream_options as Json | undefined)?.include_usage === true;
    const events =
      proto === "openai" ? openAiEvents(p, modelName, id, include) : anthropicEvents(p, modelName, id);
    if (!res.headersSent)
      res.writeHead(200, {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache",
        ...requestId,
      });
    if (fault?.kind === "cut") {
      // Half the events reach the client, then the connection drops mid-body.
      return res.write(events.slice(0, events.length >> 1).join(""), () =>
        setTimeout(() => res.destroy(), 20),
      );
    }
    if (fault?.kind === "pace") {
      for (const e of events) {
        if (res.destroyed) return;
        res.write(e);
        await new Promise((r) => setTimeout(r, fault.ms));
      }
      return res.end();
    }
    for (const e of events) res.write(e);
    res.end();
  }

  function control(req: IncomingMessage, res: ServerResponse, url: URL, raw: string) {
    if (req.method === "GET" && url.pathname === "/__stats") {
      const key = url.searchParams.get("key");
      const pick = (k: string) => Object.fromEntries(counts.get(k) ?? []);
      if (key !== null) return send(res, 200, { requests: pick(key) });
      const byKey = Object.fromEntries([...counts.keys()].filter((k) => k !== "*").map((k) => [k, pick(k)]));
      return send(res, 200, { requests: pick("*"), byKey });
    }
    if (req.method === "GET" && url.pathname === "/__requests") {
      const key = url.searchParams.get("key");
      return send(res, 200, { requests: recent.filter((r) => key === null || r.key === key) });
    }
    // A webhook receiver for notification tests: records the body and signature under key "webhook",
    // and answers with the status given by ?status= (default 200) so delivery failures can be staged.
    if (req.method === "POST" && url.pathname === "/__webhook") {
      recent.push({
        path: url.pathname,
        key: "webhook",
        headers: { signature: req.headers["x-chatedge-signature"] },
        raw,
      });
      if (recent.length > 200) recent.shift();
      return send(res, Number(url.searchParams.get("status") ?? 200), { ok: true });
    }
    // A web page for knowledge URL sources (src/knowledge): the body, Content-Type and status the
    // query names, and Location for a redirect.
    if (req.method === "GET" && url.pathname === "/__page") {
      const headers: Record<string, string> = {
        "content-type": url.searchParams.get("type") ?? "text/html; charset=utf-8",
      };
      const location = url.searchParams.get("location");
      if (location) headers.location = location;
      res.writeHead(Number(url.searchParams.get("status") ?? 200), headers);
      return res.end(url.searchParams.get("body") ?? "");
    }
    if (req.method === "POST" && url.pathname === "/__reset") {
      counts.clear();
      queues.clear();
      recent.length = 0;
      return send(res, 200, { ok: true });
    }
    if (req.method === "POST" && url.pathname === "/__control") {
      const body = JSON.parse(raw || "{}") as { key?: string; faults?: string[] };
      const faults = (body.faults ?? []).map((f) => parseFault(f));
      if (faults.some((f) => f === undefined)) return send(res, 400, { error: "unknown fault spec" });
      const key = body.key ?? "*";
      queues.set(key, [...(queues.get(key) ?? []), ...(faults as Fault[])]);
      return send(res, 200, { queued: queues.get(key)?.length ?? 0 });
    }
    return send(res, 404, { error: "not found" });
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const url = new URL(req.url ?? "/", "http://fake");
      req.url = url.pathname;
      const run = async () => {
        if (req.method === "POST" && url.pathname === "/v1/chat/completions")
          return model("openai", req, res, raw);
        if (req.method === "POST" && url.pathname === "/v1/messages")
          return model("anthropic", req, res, raw);
        if (req.method === "POST" && url.pathname === "/v1/embeddings") {
          // The local embedding model (local/embedder.ts), counted per key like the models. Only a
          // status fault queued for its own key applies: unkeyed faults are left to model calls.
          const key = (req.headers.authorization ?? "").replace(/^Bearer\s+/i, "");
          bump(key || "-", url.pathname);
          const fault = key ? queues.get(key)?.shift() : undefined;
          if (fault?.kind === "status")
            return send(
              res,
              fault.status,
              errorBody("openai", fault.status, `Injected fault: HTTP ${fault.status}`),
            );
          return serveEmbeddings(req, res, raw);
        }
        return control(req, res, url, raw);
      };
      run().catch((err: unknown) => {
        if (!res.headersSent) send(res, 500, { error: String(err) });
        else res.destroy();
      });
    });
  });
  const port = await listen(server, opts.port ?? 0, host);
  return {
    port,
    url: `http://${host}:${port}`,
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8790" } } });
  const fake = await startFakeLlm({ port: Number(values.port) });
  process.stdout.write(`fake LLM on ${fake.url} (OpenAI base ${fake.url}/v1, Anthropic base ${fake.url})\n`);
}
