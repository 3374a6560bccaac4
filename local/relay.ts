// WebSocket-to-TCP relay: plays the part of Neon's WebSocket proxy so the Neon serverless driver
// (as used by the Worker) can reach a local PostgreSQL or PGlite server during development and tests.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, type Socket } from "node:net";
import { type RawData, type WebSocket, WebSocketServer } from "ws";
import { listen, type Target, targetKey } from "./ports.ts";

export type { Target } from "./ports.ts";

export type RelayOptions = {
  port?: number;
  host?: string;
  target: Target;
  allowTargets?: string[];
  serialize?: boolean;
  log?: (msg: string) => void;
};

export type RelayStats = {
  sessions: number;
  active: number;
  queued: number;
  bytesIn: number;
  bytesOut: number;
};

export type Relay = { port: number; url: string; stats(): RelayStats; close(): Promise<void> };

type Session = {
  id: number;
  ws: WebSocket;
  target: Target;
  pending: Buffer[];
  tcp?: Socket;
  connected: boolean;
  unreachable: boolean;
  done: boolean;
  scan: PgScan;
  lastActivity: number;
  warned: boolean;
};

/** Tracks Postgres frontend message boundaries so a Terminate ('X') can be recognised exactly. */
type PgScan = { phase: "startup" | "typed" | "opaque"; skip: number; head: Buffer; awaitSsl: boolean };

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const TERMINATE = 0x58;
const HIGH_WATER = 1 << 20;
const IDLE_WARN_MS = 5000;

/** Starts the relay; resolves once it listens (port 0 picks a free port). */
export async function startRelay(opts: RelayOptions): Promise<Relay> {
  const log = opts.log ?? (() => {});
  const allowed = new Set([targetKey(opts.target), ...(opts.allowTargets ?? [])]);
  const sessions = new Set<Session>();
  const queue: Session[] = [];
  const counters = { sessions: 0, active: 0, bytesIn: 0, bytesOut: 0 };
  let running: Session | undefined;
  let nextId = 1;

  const stats = (): RelayStats => ({ ...counters, queued: queue.length });

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/stats") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(stats()));
      return;
    }
    res.writeHead(426, { "content-type": "text/plain" }).end("WebSocket upgrade required\n");
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on("upgrade", (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => accept(ws, req));
  });

  function accept(ws: WebSocket, req: IncomingMessage): void {
    const address = new URL(req.url ?? "/", "http://relay").searchParams.get("address");
    const target = address === null ? opts.target : parseTarget(address);
    // Refusing anything but the configured targets keeps the relay from being an open TCP proxy.
    if (target === undefined || !allowed.has(targetKey(target))) {
      log(`relay: refused target ${address}`);
      ws.close(1008, "target not allowed");
      return;
    }
    const s: Session = {
      id: nextId++,
      ws,
      target,
      pending: [],
      connected: false,
      unreachable: false,
      done: false,
      scan: { phase: "startup", skip: 0, head: Buffer.alloc(0), awaitSsl: false },
      lastActivity: Date.now(),
      warned: false,
    };
    sessions.add(s);
    ws.on("message", (data) => fromClient(s, toBuffer(data)));
    ws.on("close", () => finish(s));
    ws.on("error", (err) => {
      log(`relay #${s.id}: websocket error ${err.message}`);
      finish(s);
    });
    if (opts.serialize && (running !== undefined || queue.length > 0)) {
      queue.push(s);
      log(`relay #${s.id}: queued behind #${running?.id} (${queue.length} waiting)`);
    } else {
      open(s);
    }
  }

  function open(s: Session): void {
    if (opts.serialize) running = s;
    counters.active++;
    const tcp = connect({ host: s.target.host, port: s.target.port });
    s.tcp = tcp;
    tcp.setNoDelay(true);
    tcp.on("connect", () => {
      counters.sessions++;
      s.connected = true;
      log(`relay #${s.id}: connected to ${targetKey(s.target)}`);
      const early = s.pending;
      s.pending = [];
      for (const chunk of early) toServer(s, chunk);
    });
    tcp.on("data", (chunk: Buffer) => {
      s.lastActivity = Date.now();
      counters.bytesOut += chunk.length;
      if (s.scan.awaitSsl) {
        s.scan.awaitSsl = false;
        // Once TLS is negotiated the byte stream is opaque; only 'N' keeps it readable.
        if (chunk[0] !== 0x4e) s.scan.phase = "opaque";
      }
      if (s.ws.readyState !== s.ws.OPEN) return;
      s.ws.send(chunk, { binary: true }, () => {
        if (tcp.isPaused() && s.ws.bufferedAmount < HIGH_WATER) tcp.resume();
      });
      if (s.ws.bufferedAmount >= HIGH_WATER) tcp.pause();
    });
    tcp.on("drain", () => s.ws.resume());
    tcp.on("error", (err) => {
      if (!s.connected) s.unreachable = true;
      log(`relay #${s.id}: tcp error ${err.message}`);
    });
    tcp.on("close", () => {
      counters.active--;
      finish(s);
      if (running === s) {
        running = undefined;
        startNext();
      }
    });
  }

  function startNext(): void {
    const next = queue.shift();
    if (next !== undefined) open(next);
  }

  function fromClient(s: Session, chunk: Buffer): void {
    s.lastActivity = Date.now();
    if (s.done) return;
    if (!s.connected) s.pending.push(chunk);
    else toServer(s, chunk);
  }

  function toServer(s: Session, chunk: Buffer): void {
    const tcp = s.tcp;
    if (tcp === undefined || tcp.writableEnded) return;
    counters.bytesIn += chunk.length;
    const terminated = scanFrontend(s.scan, chunk);
    if (!tcp.write(chunk)) s.ws.pause();
    // PGlite's socket server keeps the connection open after Terminate, which would hold the queue.
    if (terminated) {
      log(`relay #${s.id}: client sent Terminate`);
      tcp.end();
    }
  }

  function finish(s: Session): void {
    if (s.done) {
      if (s.tcp?.destroyed !== false) sessions.delete(s);
      return;
    }
    s.done = true;
    const queued = queue.indexOf(s);
    if (queued >= 0) queue.splice(queued, 1);
    if (s.ws.readyState === s.ws.OPEN || s.ws.readyState === s.ws.CONNECTING) {
      if (s.unreachable) s.ws.close(1011, "target unreachable");
      else s.ws.close(1000);
    }
    const tcp = s.tcp;
    if (tcp !== undefined && !s.connected) {
      tcp.destroy();
    } else if (tcp !== undefined && !tcp.destroyed) {
      tcp.end();
      // A peer that ignores our FIN must not hold a serialized queue forever.
      setTimeout(() => tcp.destroy(), 2000).unref();
    } else {
      sessions.delete(s);
    }
  }

  const idleTimer = setInterval(() => {
    const s = running;
    if (s === undefined || queue.length === 0 || s.warned) return;
    if (Date.now() - s.lastActivity < IDLE_WARN_MS) return;
    s.warned = true;
    log(
      `relay #${s.id}: idle for ${IDLE_WARN_MS} ms while ${queue.length} session(s) wait; a pool may be holding it`,
    );
  }, 1000);
  idleTimer.unref();

  const port = await listen(server, opts.port ?? 0, opts.host ?? "127.0.0.1");
  log(`relay: listening on ${opts.host ?? "127.0.0.1"}:${port} -> ${targetKey(opts.target)}`);

  return {
    port,
    url: `ws://${opts.host ?? "127.0.0.1"}:${port}`,
    stats,
    async close() {
      clearInterval(idleTimer);
      queue.length = 0;
      for (const s of sessions) {
        s.done = true;
        s.ws.terminate();
        s.tcp?.destroy();
      }
      sessions.clear();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Parses "host:port" or "[v6]:port"; undefined when malformed. */
export function parseTarget(address: string): Target | undefined {
  const colon = address.lastIndexOf(":");
  if (colon <= 0) return undefined;
  const port = Number(address.slice(colon + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return undefined;
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
  return host === "" ? undefined : { host, port };
}

function toBuffer(data: RawData): Buffer {
  if (Array.isArray(data)) return Buffer.concat(data);
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  return data;
}

/** Feeds client bytes through the message scanner; true when a Terminate message was seen. */
export function scanFrontend(scan: PgScan, chunk: Buffer): boolean {
  let i = 0;
  let terminated = false;
  while (i < chunk.length && scan.phase !== "opaque") {
    if (scan.skip > 0) {
      const n = Math.min(scan.skip, chunk.length - i);
      scan.skip -= n;
      i += n;
      continue;
    }
    const headLen = scan.phase === "startup" ? 8 : 5;
    const take = Math.min(headLen - scan.head.length, chunk.length - i);
    scan.head = Buffer.concat([scan.head, chunk.subarray(i, i + take)]);
    i += take;
    if (scan.head.length < headLen) break;
    const head = scan.head;
    scan.head = Buffer.alloc(0);
    if (scan.phase === "startup") {
      const len = head.readInt32BE(0);
      const code = head.readInt32BE(4);
      if (len < 8) scan.phase = "opaque";
      else if (code === SSL_REQUEST || code === GSSENC_REQUEST) scan.awaitSsl = true;
      else scan.phase = "typed";
      scan.skip = Math.max(0, len - 8);
    } else {
      const len = head.readInt32BE(1);
      if (len < 4) scan.phase = "opaque";
      scan.skip = Math.max(0, len - 4);
      if (head[0] === TERMINATE) terminated = true;
    }
  }
  return terminated;
}
