/**
 * Starts the local stand-ins the worker talks to — the WebSocket relay playing Neon's proxy and the
 * Upstash REST bridge in front of Redis — and prints their ports as one JSON line on stdout. Runs as
 * its own Node process so test runners (Vite transforms) never load the bridges' Node-only code.
 * Usage: node local/services.ts --pg 127.0.0.1:5432 --redis redis://127.0.0.1:6379 --token T [--hang] [--fake-llm] [--turnstile]
 *   [--tool-secret S] (the example tool and the faulty tool of local/tools.ts, both checking secret S)
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { startFakeLlm } from "./fake-llm.ts";
import { startRelay } from "./relay.ts";
import { startFaultyTool, startOrderStatusTool } from "./tools.ts";
import { startTurnstile } from "./turnstile.ts";
import { startUpstashBridge } from "./upstash-bridge.ts";

const { values } = parseArgs({
  options: {
    pg: { type: "string", default: "127.0.0.1:5432" },
    redis: { type: "string" },
    token: { type: "string", default: "local-dev-token" },
    hang: { type: "boolean", default: false },
    "fake-llm": { type: "boolean", default: false },
    turnstile: { type: "boolean", default: false },
    "tool-secret": { type: "string" },
  },
});

const [pgHost = "127.0.0.1", pgPort = "5432"] = (values.pg ?? "").split(":");
const relay = await startRelay({ target: { host: pgHost, port: Number(pgPort) } });
const bridge = values.redis
  ? await startUpstashBridge({ redisUrl: values.redis, token: values.token ?? "" })
  : undefined;

// A server that accepts requests and never answers: what a hung dependency looks like.
const hang = values.hang ? createServer(() => {}) : undefined;
if (hang) await new Promise<void>((resolve) => hang.listen(0, "127.0.0.1", resolve));
// A server speaking the OpenAI and Anthropic wire protocols, with faults on demand.
const fakeLlm = values["fake-llm"] ? await startFakeLlm() : undefined;
// Cloudflare Turnstile's siteverify API and client script (local/turnstile.ts).
const turnstile = values.turnstile ? await startTurnstile() : undefined;
// Tools (local/tools.ts): the example order-status worker in workerd, and one with faults on demand.
const toolSecret = values["tool-secret"];
const orderStatus = toolSecret ? await startOrderStatusTool({ secret: toolSecret }) : undefined;
const faultyTool = toolSecret ? await startFaultyTool({ secret: toolSecret }) : undefined;

process.stdout.write(
  `${JSON.stringify({
    relayPort: relay.port,
    bridgePort: bridge?.port ?? null,
    hangPort: hang ? (hang.address() as AddressInfo).port : null,
    fakeLlmPort: fakeLlm?.port ?? null,
    turnstilePort: turnstile?.port ?? null,
    orderStatusPort: orderStatus?.port ?? null,
    faultyToolPort: faultyTool?.port ?? null,
  })}\n`,
);

async function shutdown() {
  hang?.closeAllConnections();
  await Promise.allSettled([
    relay.close(),
    bridge?.close(),
    fakeLlm?.close(),
    turnstile?.close(),
    orderStatus?.close(),
    faultyTool?.close(),
    hang && new Promise((r) => hang.close(r)),
  ]);
  process.exit(0);
}
process.on("SIGTERM", shutdown);
process.on("SIGINT", shutdown);
// Exit with the parent: a closed stdin means whoever started us is gone.
process.stdin.on("end", shutdown);
process.stdin.resume();
