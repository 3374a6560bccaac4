import { createServer, type Server } from "node:net";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/neon-serverless";
import { integer, pgTable, text } from "drizzle-orm/pg-core";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import ws from "ws";
import { freePort, listen } from "../../local/ports.ts";
import { type Relay, type RelayStats, scanFrontend, startRelay } from "../../local/relay.ts";

const PG = { host: "127.0.0.1", port: 5432 };
const DB = `chatedge_bridgetest_relay_${process.pid}_${Date.now()}`;
const dbUrl = (name: string) => `postgres://postgres@${PG.host}:${PG.port}/${name}`;

let relay: Relay;
let admin: pg.Client;

/** Points every Neon client created in this file at `port`, with the settings local Postgres needs. */
function useRelay(port: number): void {
  neonConfig.webSocketConstructor = ws;
  neonConfig.wsProxy = (host, p) => `127.0.0.1:${port}/v2?address=${host}:${p}`;
  neonConfig.useSecureWebSocket = false;
  neonConfig.pipelineTLS = false;
  neonConfig.pipelineConnect = false;
}

async function httpStats(r: Relay): Promise<RelayStats> {
  const res = await fetch(`http://127.0.0.1:${r.port}/stats`);
  expect(res.status).toBe(200);
  return (await res.json()) as RelayStats;
}

async function waitFor(check: () => boolean | Promise<boolean>, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A Postgres StartupMessage (protocol 3.0) with the given parameters. */
function startupMessage(params: Record<string, string>): Buffer {
  const body = Buffer.from(`${Object.entries(params).flat().join("\0")}\0\0`);
  const head = Buffer.alloc(8);
  head.writeInt32BE(8 + body.length, 0);
  head.writeInt32BE(196608, 4);
  return Buffer.concat([head, body]);
}

beforeAll(async () => {
  relay = await startRelay({ target: PG });
  useRelay(relay.port);
  admin = new pg.Client(dbUrl("postgres"));
  await admin.connect();
  await admin.query(`CREATE DATABASE ${DB}`);
});

afterAll(async () => {
  await relay?.close();
  await admin?.query(`DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await admin?.end();
});

describe("relay with the Neon serverless driver", () => {
  it("runs a simple query", async () => {
    const client = new Client(dbUrl(DB));
    await client.connect();
    const { rows } = await client.query("SELECT 1 + 1 AS two, current_database() AS db");
    await client.end();
    expect(rows).toEqual([{ two: 2, db: DB }]);
  });

  it("runs a parameterized query with unicode", async () => {
    const client = new Client(dbUrl(DB));
    await client.connect();
    const { rows } = await client.query("SELECT $1::text AS t, $2::int * 2 AS n", ["héllo 🎉", 21]);
    await client.end();
    expect(rows).toEqual([{ t: "héllo 🎉", n: 42 }]);
  });

  it("commits and rolls back transactions", async () => {
    const client = new Client(dbUrl(DB));
    await client.connect();
    await client.query("CREATE TABLE tx_items (id int PRIMARY KEY, label text)");
    await client.query("BEGIN");
    await client.query("INSERT INTO tx_items VALUES (1, 'kept')");
    await client.query("COMMIT");
    await client.query("BEGIN");
    await client.query("INSERT INTO tx_items VALUES (2, 'discarded')");
    await client.query("ROLLBACK");
    const { rows } = await client.query("SELECT id, label FROM tx_items ORDER BY id");
    await client.end();
    expect(rows).toEqual([{ id: 1, label: "kept" }]);
  });

  it("serves 20 concurrent queries on a Pool over exactly max sessions", async () => {
    const before = await httpStats(relay);
    const pool = new Pool({ connectionString: dbUrl(DB), max: 5 });
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => pool.query("SELECT $1::int * 10 AS v", [i])),
    );
    await pool.end();
    expect(results.map((r) => r.rows[0].v)).toEqual(Array.from({ length: 20 }, (_, i) => i * 10));
    await waitFor(() => relay.stats().active === 0);
    const after = await httpStats(relay);
    expect(after.sessions - before.sessions).toBe(5);
    expect(after.bytesIn).toBeGreaterThan(before.bytesIn);
    expect(after.bytesOut).toBeGreaterThan(before.bytesOut);
  });

  it("works under drizzle-orm's neon-serverless driver", async () => {
    const notes = pgTable("drizzle_notes", { id: integer("id").primaryKey(), body: text("body").notNull() });
    const pool = new Pool({ connectionString: dbUrl(DB), max: 2 });
    const db = drizzle({ client: pool });
    await db.execute(sql`CREATE TABLE drizzle_notes (id int PRIMARY KEY, body text NOT NULL)`);
    const inserted = await db
      .insert(notes)
      .values([
        { id: 1, body: "first" },
        { id: 2, body: "zweite ✓" },
      ])
      .returning();
    const selected = await db.select().from(notes).where(sql`${notes.id} = 2`);
    await pool.end();
    expect(inserted).toEqual([
      { id: 1, body: "first" },
      { id: 2, body: "zweite ✓" },
    ]);
    expect(selected).toEqual([{ id: 2, body: "zweite ✓" }]);
  });

  it("counts one session per connection in /stats", async () => {
    const before = await httpStats(relay);
    for (let i = 0; i < 3; i++) {
      const client = new Client(dbUrl(DB));
      await client.connect();
      await client.query("SELECT 1");
      await client.end();
    }
    await waitFor(() => relay.stats().active === 0);
    const after = await httpStats(relay);
    expect(after.sessions - before.sessions).toBe(3);
    expect(after).toMatchObject({ active: 0, queued: 0 });
  });

  it("closes the TCP connection when the client side drops without Terminate", async () => {
    const app = `bridgetest_drop_${process.pid}`;
    const sock = new ws(`ws://127.0.0.1:${relay.port}/v2?address=${PG.host}:${PG.port}`);
    await new Promise((resolve, reject) => sock.once("open", resolve).once("error", reject));
    let received = Buffer.alloc(0);
    sock.on("message", (d: Buffer) => {
      received = Buffer.concat([received, d]);
    });
    sock.send(startupMessage({ user: "postgres", database: DB, application_name: app }));
    // ReadyForQuery ('Z', length 5) means the backend session is fully up.
    await waitFor(() => received.includes(Buffer.from([0x5a, 0, 0, 0, 5])));
    const backends = async () =>
      Number(
        (await admin.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", [app]))
          .rows[0].count,
      );
    expect(await backends()).toBe(1);
    expect(relay.stats().active).toBe(1);
    sock.terminate();
    await waitFor(() => relay.stats().active === 0);
    await waitFor(async () => (await backends()) === 0);
  });
});

describe("relay target policy", () => {
  let foreign: Server;
  let foreignPort: number;
  let foreignConnections = 0;

  beforeAll(async () => {
    foreign = createServer((s) => {
      foreignConnections++;
      s.destroy();
    });
    foreignPort = await listen(foreign, 0, "127.0.0.1");
  });

  afterAll(async () => {
    await new Promise((r) => foreign.close(r));
  });

  function closeInfo(url: string): Promise<{ code: number; reason: string }> {
    return new Promise((resolve, reject) => {
      const sock = new ws(url);
      sock.on("error", reject);
      sock.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
  }

  it("refuses a foreign address with 1008 and never dials it", async () => {
    const before = relay.stats().sessions;
    const info = await closeInfo(`ws://127.0.0.1:${relay.port}/v2?address=127.0.0.1:${foreignPort}`);
    expect(info).toEqual({ code: 1008, reason: "target not allowed" });
    const bad = await closeInfo(`ws://127.0.0.1:${relay.port}/v2?address=nonsense`);
    expect(bad.code).toBe(1008);
    await new Promise((r) => setTimeout(r, 50));
    expect(foreignConnections).toBe(0);
    expect(relay.stats().sessions).toBe(before);
    const client = new Client(`postgres://postgres@127.0.0.1:${foreignPort}/postgres`);
    await expect(client.connect()).rejects.toThrow();
    expect(foreignConnections).toBe(0);
  });

  it("dials a target listed in allowTargets", async () => {
    const open = await startRelay({ target: PG, allowTargets: [`127.0.0.1:${foreignPort}`] });
    try {
      await closeInfo(`ws://127.0.0.1:${open.port}/v2?address=127.0.0.1:${foreignPort}`);
      await waitFor(() => foreignConnections === 1);
      expect(open.stats().sessions).toBe(1);
    } finally {
      await open.close();
    }
  });
});

describe("unreachable target", () => {
  it("closes the WebSocket with 1011 and frees the serialized slot", async () => {
    const dead = await startRelay({ target: { host: "127.0.0.1", port: await freePort() }, serialize: true });
    try {
      const codes = await Promise.all(
        [1, 2].map(
          () =>
            new Promise<number>((resolve, reject) => {
              const sock = new ws(`ws://127.0.0.1:${dead.port}/v2`);
              sock.on("error", reject);
              sock.on("close", (code) => resolve(code));
            }),
        ),
      );
      expect(codes).toEqual([1011, 1011]);
      await waitFor(() => dead.stats().active === 0);
      expect(dead.stats()).toMatchObject({ sessions: 0, active: 0, queued: 0 });
    } finally {
      await dead.close();
    }
  });
});

describe("serialized relay", () => {
  let serial: Relay;

  beforeAll(async () => {
    serial = await startRelay({ target: PG, serialize: true });
  });

  afterAll(async () => {
    await serial?.close();
    useRelay(relay.port);
  });

  it("relays two concurrent clients one after the other", async () => {
    useRelay(serial.port);
    const first = new Client(dbUrl(DB));
    await first.connect();
    const second = new Client(dbUrl(DB));
    let secondConnectedAt = 0;
    const secondConnect = second.connect().then(() => {
      secondConnectedAt = Date.now();
    });
    await waitFor(() => serial.stats().queued === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(secondConnectedAt).toBe(0);
    expect(await httpStats(serial)).toMatchObject({ sessions: 1, active: 1, queued: 1 });
    const a = await first.query("SELECT 'first' AS who");
    const firstEndingAt = Date.now();
    await first.end();
    await secondConnect;
    expect(secondConnectedAt).toBeGreaterThanOrEqual(firstEndingAt);
    const b = await second.query("SELECT 'second' AS who");
    await second.end();
    expect([a.rows[0].who, b.rows[0].who]).toEqual(["first", "second"]);
    await waitFor(() => serial.stats().active === 0);
    expect(await httpStats(serial)).toMatchObject({ sessions: 2, active: 0, queued: 0 });
  });
});

/** A frontend message: type byte, int32 length (including itself), payload. */
function frontend(type: string, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, "latin1");
  head.writeInt32BE(4 + payload.length, 1);
  return Buffer.concat([head, payload]);
}

describe("Terminate handling", () => {
  const startup = startupMessage({ user: "postgres", database: "postgres" });
  // A Query whose text contains the exact bytes of a Terminate message must not end the session.
  const tricky = frontend("Q", Buffer.from("SELECT 'X\u0000\u0000\u0000\u0004'\u0000"));
  const terminate = frontend("X");
  const fresh = () => ({ phase: "startup" as const, skip: 0, head: Buffer.alloc(0), awaitSsl: false });

  it("finds Terminate only at message boundaries, however the bytes are split", () => {
    const stream = Buffer.concat([startup, tricky, terminate]);
    expect(scanFrontend(fresh(), Buffer.concat([startup, tricky]))).toBe(false);
    expect(scanFrontend(fresh(), stream)).toBe(true);
    const scan = fresh();
    const hits = [...stream].map((byte) => scanFrontend(scan, Buffer.from([byte])));
    expect(hits.indexOf(true)).toBe(stream.length - 1);
    expect(hits.filter(Boolean)).toHaveLength(1);
  });

  it("ends the TCP connection after forwarding Terminate, even if the server would not", async () => {
    const seen: { data: Buffer; ended: boolean }[] = [];
    // allowHalfOpen keeps this server from closing on its own, like PGlite's socket server.
    const lazy = createServer({ allowHalfOpen: true }, (s) => {
      const entry = { data: Buffer.alloc(0), ended: false };
      seen.push(entry);
      s.on("data", (d) => {
        entry.data = Buffer.concat([entry.data, d as Buffer]);
      });
      s.on("end", () => {
        entry.ended = true;
        s.end();
      });
    });
    const port = await listen(lazy, 0, "127.0.0.1");
    const r = await startRelay({ target: { host: "127.0.0.1", port } });
    try {
      const sock = new ws(`ws://127.0.0.1:${r.port}/v2`);
      await new Promise((resolve, reject) => sock.once("open", resolve).once("error", reject));
      sock.send(startup);
      sock.send(tricky);
      await waitFor(() => seen[0]?.data.length === startup.length + tricky.length);
      await new Promise((done) => setTimeout(done, 50));
      expect(seen[0]?.ended).toBe(false);
      const closed = new Promise((resolve) => sock.once("close", resolve));
      sock.send(terminate);
      await waitFor(() => seen[0]?.ended === true);
      expect(seen[0]?.data).toEqual(Buffer.concat([startup, tricky, terminate]));
      await closed;
      await waitFor(() => r.stats().active === 0);
      expect(r.stats().sessions).toBe(1);
    } finally {
      await r.close();
      await new Promise((done) => lazy.close(done));
    }
  });
});
