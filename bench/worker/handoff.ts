/**
 * The handoff benchmark's worker: the real Conversation object (human mode, live sockets with the
 * hibernation API) behind the operator's write path as the REST route runs it (blocked topics,
 * redaction, token count, the object's RPC), beside a bare Durable Object WebSocket echo with the
 * same hops. The session lookup of /operator (Postgres) is left out: this measures delivery.
 * Bundled by bench/handoff.ts; never deployed.
 */
import { DurableObject } from "cloudflare:workers";
import { TopicMatcher } from "../../src/chat/safety";
import { messageTokens } from "../../src/chat/tokens";
import { redactReply } from "../../src/privacy/redact";

export { Conversation } from "../../src/chat/conversation-do";

/**
 * The baseline: a DO that accepts hibernatable sockets and sends each posted text to them; with
 * `store` it first writes the text to SQLite (a diagnostic: what durability alone costs).
 */
export class Echo extends DurableObject {
  override async fetch(): Promise<Response> {
    const pair = new WebSocketPair();
    this.ctx.acceptWebSocket(pair[1]);
    return new Response(null, { status: 101, webSocket: pair[0] });
  }

  broadcast(text: string, store = false): number {
    if (store) {
      const sql = this.ctx.storage.sql;
      sql.exec("create table if not exists m (seq integer primary key, text text not null)");
      sql.exec("insert into m (text) values (?)", text);
    }
    const sockets = this.ctx.getWebSockets();
    for (const ws of sockets) ws.send(text);
    return sockets.length;
  }

  override async webSocketMessage(): Promise<void> {}

  override async webSocketClose(ws: WebSocket, code: number): Promise<void> {
    ws.close(code === 1005 || code === 1006 ? 1000 : code);
  }
}

interface BenchEnv {
  CONVERSATION: DurableObjectNamespace<import("../../src/chat/conversation-do").Conversation>;
  ECHO: DurableObjectNamespace<Echo>;
}

const TENANT = "bench-tenant";
const HOLDER = { operatorId: "op-bench", name: "Anna" };
const topics = new TopicMatcher(["crypto investments"]);

export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    const [, route = "", id = ""] = url.pathname.split("/");
    const conv = () => env.CONVERSATION.getByName(`${TENANT}:${id}`);
    switch (route) {
      case "start": {
        const started = await conv().start({
          tenantId: TENANT,
          conversationId: id,
          userId: `visitor:${id}`,
          channel: "web",
          greeting: "",
          experiment: null,
          variant: null,
          idleTimeoutMs: 3_600_000,
        });
        if (!started.ok) return new Response(started.message, { status: 500 });
        const taken = await conv().takeover(TENANT, HOLDER);
        return new Response(taken.ok ? "ok" : taken.message, { status: taken.ok ? 200 : 500 });
      }
      case "live":
        // The visitor's socket as src/handoff/live.ts forwards it once the ticket checked out.
        return conv().fetch(
          new Request(url, {
            headers: {
              upgrade: "websocket",
              "x-live-tenant": TENANT,
              "x-live-kind": "visitor",
              "x-live-user": `visitor:${id}`,
              "x-live-ticket": crypto.randomUUID(),
              "x-live-expires": String(Date.now() + 60_000),
            },
          }),
        );
      case "send": {
        // The operator's message as src/handoff/routes.ts handles it.
        const text = await request.text();
        if (topics.match(text)) return new Response("blocked", { status: 400 });
        const content = redactReply(text, "");
        const r = await conv().operatorMessage(TENANT, HOLDER.operatorId, {
          content,
          tokens: messageTokens({ role: "assistant", content }),
        });
        return r.ok
          ? Response.json(r.value.entry, { status: 201 })
          : new Response(r.message, { status: 409 });
      }
      case "echo-live":
        return env.ECHO.getByName(id).fetch(request);
      case "echo-send":
      case "stored-send": {
        const text = await request.text();
        const n = await env.ECHO.getByName(id).broadcast(
          JSON.stringify({ type: "entry", content: text }),
          route === "stored-send",
        );
        return new Response(String(n), { status: 201 });
      }
      default:
        return new Response("not found", { status: 404 });
    }
  },
} satisfies ExportedHandler<BenchEnv>;
