/**
 * The widget's live channel (web/widget/live.ts) against a server speaking the live protocol of
 * docs/handoff.md: a ticket route over HTTP, then a WebSocket that answers `resume` with the state
 * and every entry after the seq, and pushes new ones. A dropped socket reconnects with a new
 * ticket and resumes after the highest seq shown: nothing lost, nothing shown twice.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { type WebSocket as ServerSocket, WebSocketServer } from "ws";
import type { TranscriptEntry } from "../../src/handoff/types";
import { LiveChannel } from "../../web/widget/live";
import { Memo, VisitorToken } from "../../web/widget/storage";

interface Fake {
  base: string;
  tickets: string[];
  resumes: number[];
  /** Frames that were exactly the protocol's keep-alive ping. */
  pings: string[];
  sockets: ServerSocket[];
  /** Stores an entry and pushes it to every resumed socket. */
  add(content: string): void;
  /** The state frame to every socket. */
  state(status: string): void;
  close(): Promise<void>;
}

async function fakeServer(conversation: string): Promise<Fake> {
  const entries: TranscriptEntry[] = [];
  const tickets: string[] = [];
  const spent = new Set<string>();
  const resumes: number[] = [];
  const pings: string[] = [];
  const sockets: ServerSocket[] = [];
  const resumed = new Set<ServerSocket>();
  const http: Server = createServer((req, res) => {
    if (req.method === "POST" && req.url === `/v1/conversations/${conversation}/live`) {
      const ticket = `t${tickets.length + 1}`;
      tickets.push(ticket);
      const { port } = http.address() as AddressInfo;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ url: `ws://127.0.0.1:${port}/live?ticket=${ticket}`, ticket, expires_at: 0 }));
      return;
    }
    res.writeHead(404, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: { code: "NOT_FOUND", message: "no route", requestId: "r" } }));
  });
  const wss = new WebSocketServer({ noServer: true });
  http.on("upgrade", (req, socket, head) => {
    const ticket = new URL(req.url ?? "", "http://x").searchParams.get("ticket") ?? "";
    // Tickets open one socket, once.
    if (!tickets.includes(ticket) || spent.has(ticket)) return socket.destroy();
    spent.add(ticket);
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.push(ws);
      ws.on("message", (raw) => {
        if (String(raw) === '{"type":"ping"}') pings.push(String(raw));
        const f = JSON.parse(String(raw)) as { type: string; after: number };
        if (f.type !== "resume") return;
        resumes.push(f.after);
        resumed.add(ws);
        ws.send(JSON.stringify({ type: "state", status: "human", holder: null, version: entries.length }));
        for (const e of entries.filter((x) => x.seq > f.after))
          ws.send(JSON.stringify({ type: "entry", ...e }));
      });
    });
  });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const { port } = http.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    tickets,
    resumes,
    pings,
    sockets,
    add(content) {
      const e: TranscriptEntry = {
        seq: entries.length + 1,
        role: "operator",
        author: "Anna",
        content,
        at: 0,
      };
      entries.push(e);
      for (const ws of resumed)
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: "entry", ...e }));
    },
    state(status) {
      for (const ws of sockets)
        if (ws.readyState === ws.OPEN)
          ws.send(JSON.stringify({ type: "state", status, holder: null, version: 0 }));
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      await new Promise((r) => http.close(r));
    },
  };
}

async function until(cond: () => boolean, what: string, ms = 8_000) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let server: Fake | undefined;
let channel: LiveChannel | undefined;
afterEach(async () => {
  channel?.stop();
  await server?.close();
});

describe("the widget's live channel", () => {
  it("pings an open socket to keep it alive, with the exact frame the runtime answers, until stopped", async () => {
    server = await fakeServer("conv_2");
    const api = { base: server.base, key: "pk_test", visitor: new VisitorToken(new Memo("localStorage")) };
    channel = new LiveChannel(api, "conv_2", 0, { entry: () => {}, state: () => {} }, undefined, 40);
    await until(() => server?.resumes.length === 1, "resume");
    await until(() => (server?.pings.length ?? 0) >= 2, "two pings");
    // A dropped socket's pinging ends with it; the new one pings on its own.
    server.sockets[0]?.terminate();
    await until(() => server?.resumes.length === 2, "resume after the drop");
    const before = server.pings.length;
    await until(() => (server?.pings.length ?? 0) >= before + 2, "pings on the new socket");
    channel.stop();
    const stopped = server.pings.length;
    await new Promise((r) => setTimeout(r, 200));
    expect(server.pings.length).toBe(stopped);
  });

  it("shows each entry once across a dropped connection, resuming after the highest seq shown", async () => {
    server = await fakeServer("conv_1");
    const shown: TranscriptEntry[] = [];
    const states: string[] = [];
    const api = { base: server.base, key: "pk_test", visitor: new VisitorToken(new Memo("localStorage")) };
    // The restored transcript showed up to seq 1 already.
    server.add("before the page loaded");
    channel = new LiveChannel(api, "conv_1", 1, {
      entry: (e) => shown.push(e),
      state: (s) => states.push(s.status),
    });
    await until(() => server?.resumes.length === 1, "first resume");
    expect(server.resumes).toEqual([1]);
    server.add("m2");
    server.add("m3");
    await until(() => shown.length === 2, "m2, m3");
    // The connection drops; two messages are written meanwhile.
    server.sockets[0]?.terminate();
    server.add("m4");
    server.add("m5");
    await until(() => shown.length === 4, "m4, m5 after the reconnect");
    expect(server.tickets).toHaveLength(2);
    expect(server.resumes).toEqual([1, 3]);
    // A server replaying what the client has (a resume from an older seq) shows nothing twice.
    server.sockets[1]?.send(
      JSON.stringify({ type: "entry", seq: 3, role: "operator", author: "Anna", content: "m3", at: 0 }),
    );
    server.add("m6");
    await until(() => shown.length === 5, "m6");
    expect(shown.map((e) => [e.seq, e.content])).toEqual([
      [2, "m2"],
      [3, "m3"],
      [4, "m4"],
      [5, "m5"],
      [6, "m6"],
    ]);
    expect(channel.seen).toBe(6);
    expect(states).toEqual(["human", "human"]);
  });

  it("stops for good when the conversation ends: no reconnect", async () => {
    server = await fakeServer("conv_2");
    const states: string[] = [];
    const api = { base: server.base, key: "pk_test", visitor: new VisitorToken(new Memo("localStorage")) };
    channel = new LiveChannel(api, "conv_2", 0, { entry: () => {}, state: (s) => states.push(s.status) });
    await until(() => server?.resumes.length === 1, "resume");
    server.state("resolved");
    await until(() => states.includes("resolved"), "resolved");
    await new Promise((r) => setTimeout(r, 1_500));
    expect(server.tickets).toHaveLength(1);
  });

  it("does not reconnect to a conversation the server no longer knows", async () => {
    server = await fakeServer("conv_3");
    const api = { base: server.base, key: "pk_test", visitor: new VisitorToken(new Memo("localStorage")) };
    channel = new LiveChannel(api, "conv_other", 0, { entry: () => {}, state: () => {} });
    await new Promise((r) => setTimeout(r, 1_500));
    expect(server.tickets).toHaveLength(0);
    expect(server.sockets).toHaveLength(0);
  });
});
