/**
 * Replays analytics dead letters through a running worker: each call to
 * `POST /admin/dead-letters/replay` re-sends up to `--limit` stored messages with the worker's
 * queue producer and marks them replayed; the consumer then writes them (idempotently by event id).
 * Run it once Postgres (or whatever made them fail) is healthy again.
 *
 * Usage: ADMIN_TOKEN=... node local/replay-dead-letters.ts [--url http://127.0.0.1:8787]
 *          [--reason exhausted|rejected|invalid] [--tenant ID] [--limit 100] [--all] [--list]
 * --list only shows what is pending; --all repeats until nothing matching is left.
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: {
    url: {
      type: "string",
      default: process.env.CHATEDGE_URL ?? `http://127.0.0.1:${process.env.PORT ?? 8787}`,
    },
    reason: { type: "string" },
    tenant: { type: "string" },
    limit: { type: "string", default: "100" },
    all: { type: "boolean", default: false },
    list: { type: "boolean", default: false },
  },
});

const token = process.env.ADMIN_TOKEN;
if (!token) {
  console.error("ADMIN_TOKEN is not set (npm run dev uses dev-admin-token-change-me unless you set one)");
  process.exit(2);
}
const base = (values.url ?? "").replace(/\/$/, "");
const limit = Number(values.limit);
if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
  console.error("--limit must be an integer from 1 to 1000");
  process.exit(2);
}

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const filter = {
  ...(values.reason ? { reason: values.reason } : {}),
  ...(values.tenant ? { tenant_id: values.tenant } : {}),
};

try {
  if (values.list) {
    const q = new URLSearchParams({ ...filter, limit: String(Math.min(limit, 100)) });
    const out = (await call("GET", `/admin/dead-letters?${q}`)) as {
      dead_letters: {
        id: number;
        reason: string;
        tenant_id: string | null;
        event_id: string | null;
        error: string;
        created_at: string;
      }[];
      pending: number;
    };
    for (const d of out.dead_letters) {
      console.log(
        `${d.id}\t${d.created_at}\t${d.reason}\t${d.tenant_id ?? "-"}\t${d.event_id ?? "-"}\t${d.error}`,
      );
    }
    console.log(`${out.pending} pending`);
  } else {
    let total = 0;
    for (;;) {
      const out = (await call("POST", "/admin/dead-letters/replay", { ...filter, limit })) as {
        replayed: number;
        remaining: number;
      };
      total += out.replayed;
      console.log(`replayed ${out.replayed}, ${out.remaining} still pending`);
      if (!values.all || out.replayed === 0 || out.remaining === 0) break;
    }
    console.log(`done: ${total} dead letters sent back to the analytics queue`);
  }
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
