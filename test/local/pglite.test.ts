import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { neonConfig, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import ws from "ws";
import { type PgliteServer, postgresAnswers, startPglite } from "../../local/pglite.ts";
import { type Relay, startRelay } from "../../local/relay.ts";

let dataDir: string;
let pglite: PgliteServer | undefined;
let relay: Relay | undefined;

/** PGlite plus the serialized relay in front of it, the way local/dev.ts wires them. */
async function start(): Promise<{ pool: Pool; pgPort: number }> {
  pglite = await startPglite({ dataDir });
  relay = await startRelay({ target: { host: "127.0.0.1", port: pglite.port }, serialize: true });
  neonConfig.webSocketConstructor = ws;
  neonConfig.wsProxy = (host, port) => `127.0.0.1:${relay?.port}/v2?address=${host}:${port}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
  // Idle pooled connections would hold the serialized relay, so they are dropped right away.
  const url = `postgres://postgres@127.0.0.1:${pglite.port}/postgres`;
  return { pool: new Pool({ connectionString: url, max: 10, idleTimeoutMillis: 1 }), pgPort: pglite.port };
}

async function stop(): Promise<void> {
  await relay?.close();
  await pglite?.close();
  relay = undefined;
  pglite = undefined;
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "chatedge-pglite-test-"));
});

afterAll(async () => {
  await stop();
  await rm(dataDir, { recursive: true, force: true });
});

describe("PGlite behind a serialized relay", () => {
  it("serves DDL, writes and reads, serializes concurrent queries, and persists across restarts", async () => {
    const { pool, pgPort } = await start();
    expect(await postgresAnswers("127.0.0.1", pgPort)).toBe(true);

    await pool.query("CREATE TABLE notes (id int PRIMARY KEY, body text NOT NULL)");
    await pool.query("INSERT INTO notes VALUES ($1, $2), ($3, $4)", [1, "erste 🎈", 2, "second"]);
    const { rows } = await pool.query("SELECT id, body FROM notes ORDER BY id");
    expect(rows).toEqual([
      { id: 1, body: "erste 🎈" },
      { id: 2, body: "second" },
    ]);

    const r = relay as Relay;
    // Let the pool's idle connection close, so the batch below must open exactly 10 sessions.
    while (r.stats().active > 0) await new Promise((done) => setTimeout(done, 5));
    const before = r.stats().sessions;
    let maxActive = 0;
    let maxQueued = 0;
    const sampler = setInterval(() => {
      maxActive = Math.max(maxActive, r.stats().active);
      maxQueued = Math.max(maxQueued, r.stats().queued);
    }, 1);
    const results = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        pool.query("INSERT INTO notes VALUES ($1, $2) RETURNING id", [100 + i, `n${i}`]),
      ),
    );
    clearInterval(sampler);
    expect(results.map((x) => x.rows[0].id)).toEqual(Array.from({ length: 10 }, (_, i) => 100 + i));
    expect(r.stats().sessions - before).toBe(10);
    expect(maxActive).toBe(1);
    expect(maxQueued).toBeGreaterThan(0);
    await pool.end();

    await stop();
    expect(await postgresAnswers("127.0.0.1", pgPort, 300)).toBe(false);

    const again = await start();
    const count = await again.pool.query("SELECT count(*)::int AS n, max(body) AS top FROM notes");
    await again.pool.end();
    expect(count.rows).toEqual([{ n: 12, top: "second" }]);
  });
});
