/**
 * Local tool servers for `npm run dev` and the worker tests:
 *
 *  - the example tool (examples/order-status), bundled with esbuild and run in workerd through
 *    Miniflare, as it runs deployed; its TOOL_SECRET is given;
 *  - a faulty tool speaking the same signed protocol, for the failure paths: it verifies the
 *    signature like a real tool (401 when it does not hold) and then answers by path:
 *    `/ok` echoes the call as JSON, `/status/<code>` answers that status, `/hang` never answers,
 *    `/invalid-json` answers text, `/huge` streams 1 MiB of valid JSON, `/slow-huge` streams it
 *    slowly. `GET /__requests` lists what it received (newest last) for tests to inspect.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { convertV4MiniflareOptions, Log, LogLevel, Miniflare } from "miniflare";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifySignature } from "../examples/order-status/src/verify.ts";
import { listen } from "./ports.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** local/tools.ts's exit code when its port is taken (Linux's EADDRINUSE), so a parent can pick another. */
const EXIT_ADDRESS_IN_USE = 98;

/** Raised by spawnOrderStatusTool when the port it was given is taken by the time workerd binds it. */
export class PortInUseError extends Error {
  readonly port: number;
  constructor(port: number) {
    super(`port ${port} is already in use`);
    this.port = port;
  }
}

export interface RunningTool {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Bundles examples/order-status and serves it from workerd on 127.0.0.1:`port` (0: any free port). */
export async function startOrderStatusTool(opts: { secret: string; port?: number }): Promise<RunningTool> {
  const bundle = await build({
    entryPoints: [`${root}examples/order-status/src/index.ts`],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    write: false,
    logLevel: "silent",
  });
  const script = bundle.outputFiles[0]?.text ?? "";
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      log: new Log(LogLevel.ERROR),
      modules: true,
      script,
      compatibilityDate: "2026-10-15",
      bindings: { TOOL_SECRET: opts.secret },
      host: "127.0.0.1",
      port: opts.port ?? 0,
    }),
  );
  const url = (await mf.ready).toString().replace(/\/$/, "");
  return { url, port: Number(new URL(url).port), close: () => mf.dispose() };
}

export interface FaultyTool extends RunningTool {
  /** Bodies the tool accepted (signature verified), oldest first. */
  received: unknown[];
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** Streams `bytes` of valid JSON (a long string), `delayMs` between 16 KiB chunks. */
async function streamHuge(res: ServerResponse, bytes: number, delayMs: number): Promise<void> {
  res.writeHead(200, { "Content-Type": "application/json" });
  res.write('{"pad":"');
  const chunk = "x".repeat(16 * 1024);
  for (let sent = 0; sent < bytes && !res.destroyed; sent += chunk.length) {
    res.write(chunk);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  }
  res.end('"}');
}

/** Starts the faulty tool on 127.0.0.1 with the signing secret it checks. */
export async function startFaultyTool(opts: { secret: string; port?: number }): Promise<FaultyTool> {
  const received: unknown[] = [];
  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method === "GET" && path === "/__requests") {
      res.writeHead(200, { "Content-Type": "application/json" });
      return res.end(JSON.stringify(received));
    }
    const body = await readBody(req);
    const header = (name: string) => {
      const v = req.headers[name.toLowerCase()];
      return typeof v === "string" ? v : null;
    };
    const verified = await verifySignature(
      opts.secret,
      header(TIMESTAMP_HEADER),
      header(SIGNATURE_HEADER),
      body,
    );
    if (!verified.ok) {
      res.writeHead(401, { "Content-Type": "application/json" });
      return res.end(JSON.stringify({ error: verified.reason }));
    }
    received.push(JSON.parse(body));
    const status = /^\/status\/(\d{3})$/.exec(path);
    if (status) {
      res.writeHead(Number(status[1]), { "Content-Type": "application/json" });
      return res.end(JSON.stringify({ error: "the tool failed", internal: "stack trace with secrets" }));
    }
    switch (path) {
      case "/ok":
        res.writeHead(200, { "Content-Type": "application/json" });
        return res.end(JSON.stringify({ echo: JSON.parse(body) }));
      case "/hang":
        return; // never answers
      case "/invalid-json":
        res.writeHead(200, { "Content-Type": "application/json" });
        return res.end("<html>not json</html>");
      case "/huge":
        return streamHuge(res, 1024 * 1024, 0);
      case "/slow-huge":
        return streamHuge(res, 1024 * 1024, 20);
      default:
        res.writeHead(404, { "Content-Type": "application/json" });
        return res.end(JSON.stringify({ error: "no such path" }));
    }
  });
  const port = await listen(server, opts.port ?? 0, "127.0.0.1");
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Runs the example tool in a child process (`node local/tools.ts`): Miniflare hooks SIGINT and
 * SIGTERM in whatever process loads it (exiting with 130 or 143), which would take Ctrl-C away from
 * local/dev.ts's own orderly shutdown. The secret goes through the environment, not argv, so it is
 * not on `ps`. The child exits when its stdin closes (its parent is gone) or on SIGTERM.
 */
export async function spawnOrderStatusTool(opts: { secret: string; port: number }): Promise<RunningTool> {
  const { spawn } = await import("node:child_process");
  const { createInterface } = await import("node:readline");
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), "--port", String(opts.port)], {
    stdio: ["pipe", "pipe", "inherit"],
    env: { ...process.env, ORDER_STATUS_TOOL_SECRET: opts.secret },
  });
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", resolve);
    child.once("exit", (code) =>
      reject(
        code === EXIT_ADDRESS_IN_USE
          ? new PortInUseError(opts.port)
          : new Error(`local/tools.ts exited with ${code}`),
      ),
    );
  });
  const { url, port } = JSON.parse(first) as { url: string; port: number };
  return {
    url,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

if (import.meta.main) {
  const { parseArgs } = await import("node:util");
  const { values } = parseArgs({ options: { port: { type: "string", default: "8795" } } });
  const secret = process.env.ORDER_STATUS_TOOL_SECRET;
  if (!secret) throw new Error("ORDER_STATUS_TOOL_SECRET is not set");
  const tool = await startOrderStatusTool({ secret, port: Number(values.port) }).catch((err) => {
    if ((err as { code?: unknown }).code !== "ERR_ADDRESS_IN_USE") throw err;
    process.stderr.write(`[tools] port ${values.port} is already in use\n`);
    process.exit(EXIT_ADDRESS_IN_USE);
  });
  process.stdout.write(`${JSON.stringify({ url: tool.url, port: tool.port })}\n`);
  const stop = () => void tool.close().finally(() => process.exit(0));
  process.stdin.on("end", stop);
  process.stdin.resume();
}
