import { Redis } from "@upstash/redis";
import IORedis from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../local/ports.ts";
import { type Bridge, redisAnswers, startUpstashBridge } from "../../local/upstash-bridge.ts";

const REDIS_URL = "redis://127.0.0.1:6379";
const TOKEN = "bridgetest-token";
const P = `bridgetest:${process.pid}:${Date.now()}:`;

let bridge: Bridge;
let redis: Redis;
let raw: IORedis;

const b64 = (s: string | Buffer) => Buffer.from(s).toString("base64");

/** Posts like the Upstash client does, so the exact wire format can be checked. */
async function post(path: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${bridge.url}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json", ...headers },
    body,
  });
  return { status: res.status, json: (await res.json()) as unknown };
}

beforeAll(async () => {
  bridge = await startUpstashBridge({ redisUrl: REDIS_URL, token: TOKEN });
  redis = new Redis({ url: bridge.url, token: TOKEN, enableTelemetry: false });
  raw = new IORedis(REDIS_URL, { protocol: 2 });
});

afterAll(async () => {
  const keys = await raw.keys(`${P}*`);
  if (keys.length > 0) await raw.del(...keys);
  raw.disconnect();
  await bridge?.close();
});

describe("@upstash/redis through the bridge (base64 responses)", () => {
  it("sets and gets JSON objects, stored as JSON text", async () => {
    const value = { name: "Ada", tags: ["x", "y"], n: 3, nested: { ok: true } };
    expect(await redis.set(`${P}obj`, value)).toBe("OK");
    expect(await redis.get(`${P}obj`)).toEqual(value);
    expect(await raw.get(`${P}obj`)).toBe(JSON.stringify(value));
  });

  it("round-trips unicode and emoji", async () => {
    const text = "héllo wörld — 你好 🎉👍🏽 \u0000 end";
    expect(await redis.set(`${P}uni`, text)).toBe("OK");
    expect(await redis.get(`${P}uni`)).toBe(text);
    expect(await raw.get(`${P}uni`)).toBe(text);
  });

  it("returns null for nil", async () => {
    expect(await redis.get(`${P}missing`)).toBeNull();
    expect(await redis.hget(`${P}missing`, "f")).toBeNull();
  });

  it("handles incr, expire and ttl", async () => {
    expect(await redis.incr(`${P}ctr`)).toBe(1);
    expect(await redis.incrby(`${P}ctr`, 41)).toBe(42);
    expect(await redis.ttl(`${P}ctr`)).toBe(-1);
    expect(await redis.expire(`${P}ctr`, 100)).toBe(1);
    const ttl = await redis.ttl(`${P}ctr`);
    expect(ttl === 100 || ttl === 99).toBe(true);
    expect(await redis.ttl(`${P}missing`)).toBe(-2);
  });

  it("handles hset and hgetall", async () => {
    expect(await redis.hset(`${P}hash`, { name: "ada", lang: "en", count: 3 })).toBe(3);
    expect(await redis.hgetall(`${P}hash`)).toEqual({ name: "ada", lang: "en", count: 3 });
    expect(await raw.hgetall(`${P}hash`)).toEqual({ name: "ada", lang: "en", count: "3" });
  });

  it("handles zadd and zrange", async () => {
    expect(await redis.zadd(`${P}z`, { score: 2, member: "b" }, { score: 1, member: "a" })).toBe(2);
    expect(await redis.zrange(`${P}z`, 0, -1)).toEqual(["a", "b"]);
    expect(await redis.zrange(`${P}z`, 0, -1, { withScores: true })).toEqual(["a", 1, "b", 2]);
  });

  it("deletes keys", async () => {
    await redis.set(`${P}d1`, "1");
    await redis.set(`${P}d2`, "2");
    expect(await redis.del(`${P}d1`, `${P}d2`, `${P}d3`)).toBe(2);
    expect(await redis.exists(`${P}d1`, `${P}d2`)).toBe(0);
  });

  it("runs a pipeline", async () => {
    const p = redis.pipeline();
    p.set(`${P}pl`, "v");
    p.get(`${P}pl`);
    p.incr(`${P}pl:n`);
    p.get(`${P}pl:none`);
    expect(await p.exec()).toEqual(["OK", "v", 1, null]);
  });

  it("keeps per-command errors in a pipeline", async () => {
    await redis.set(`${P}plerr`, "text");
    const p = redis.pipeline();
    p.get(`${P}plerr`);
    p.incr(`${P}plerr`);
    const out = await p.exec({ keepErrors: true });
    expect(out[0]).toEqual({ result: "text", error: undefined });
    expect(out[1]?.error).toBe("ERR value is not an integer or out of range");
  });

  it("runs multi() as a transaction", async () => {
    const m = redis.multi();
    m.set(`${P}tx`, 1);
    m.incr(`${P}tx`);
    m.incrby(`${P}tx`, 10);
    m.get(`${P}tx`);
    expect(await m.exec()).toEqual(["OK", 2, 12, 12]);
  });

  it("surfaces Redis errors as thrown errors", async () => {
    await redis.hset(`${P}wrongtype`, { a: 1 });
    await expect(redis.incr(`${P}wrongtype`)).rejects.toThrow(
      /^Command failed: WRONGTYPE Operation against a key holding the wrong kind of value/,
    );
  });

  it("counts commands", async () => {
    const before = bridge.stats().commands;
    await redis.get(`${P}missing`);
    const p = redis.pipeline();
    p.get(`${P}a`);
    p.get(`${P}b`);
    await p.exec();
    expect(bridge.stats().commands - before).toBe(3);
  });
});

describe("@upstash/redis through the bridge (plain responses)", () => {
  it("works with responseEncoding: false", async () => {
    const plain = new Redis({
      url: bridge.url,
      token: TOKEN,
      responseEncoding: false,
      enableTelemetry: false,
    });
    expect(await plain.set(`${P}plain`, "ünïcode 🚀")).toBe("OK");
    expect(await plain.get(`${P}plain`)).toBe("ünïcode 🚀");
    expect(await plain.set(`${P}plainobj`, { a: [1, 2] })).toBe("OK");
    expect(await plain.get(`${P}plainobj`)).toEqual({ a: [1, 2] });
    expect(await plain.incr(`${P}plainctr`)).toBe(1);
    expect(await plain.get(`${P}missing`)).toBeNull();
  });
});

describe("wire protocol", () => {
  it("base64-encodes every string, keeps integers and nil", async () => {
    const h = { "upstash-encoding": "base64" };
    expect(await post("/", JSON.stringify(["SET", `${P}w`, "héllo"]), h)).toEqual({
      status: 200,
      json: { result: "T0s=" },
    });
    expect(await post("/", JSON.stringify(["GET", `${P}w`]), h)).toEqual({
      status: 200,
      json: { result: b64("héllo") },
    });
    expect(await post("/", JSON.stringify(["INCR", `${P}wn`]), h)).toEqual({
      status: 200,
      json: { result: 1 },
    });
    expect(await post("/", JSON.stringify(["GET", `${P}missing`]), h)).toEqual({
      status: 200,
      json: { result: null },
    });
    expect(await post("/", JSON.stringify(["PING"]), h)).toEqual({
      status: 200,
      json: { result: b64("PONG") },
    });
    await raw.rpush(`${P}wl`, "a", "b");
    expect(await post("/", JSON.stringify(["LRANGE", `${P}wl`, 0, -1]), h)).toEqual({
      status: 200,
      json: { result: [b64("a"), b64("b")] },
    });
  });

  it("base64-encodes binary values exactly", async () => {
    await raw.set(`${P}bin`, Buffer.from([0xff, 0x00, 0xfe, 0x80]));
    const res = await post("/", JSON.stringify(["GET", `${P}bin`]), { "upstash-encoding": "base64" });
    expect(res.json).toEqual({ result: "/wD+gA==" });
  });

  it("answers plain UTF-8 without the base64 header", async () => {
    expect(await post("/", JSON.stringify(["SET", `${P}p`, "ä"]))).toEqual({
      status: 200,
      json: { result: "OK" },
    });
    expect(await post("/", JSON.stringify(["GET", `${P}p`]))).toEqual({ status: 200, json: { result: "ä" } });
  });

  it("returns per-item results and errors from /pipeline", async () => {
    await raw.set(`${P}pw`, "x");
    const res = await post(
      "/pipeline",
      JSON.stringify([
        ["GET", `${P}pw`],
        ["INCR", `${P}pw`],
        ["EXISTS", `${P}pw`],
      ]),
    );
    expect(res).toEqual({
      status: 200,
      json: [{ result: "x" }, { error: "ERR value is not an integer or out of range" }, { result: 1 }],
    });
  });

  it("executes /multi-exec atomically (a queueing error discards everything)", async () => {
    const res = await post(
      "/multi-exec",
      JSON.stringify([
        ["SET", `${P}atomic`, "a"],
        ["SET", `${P}atomic`],
      ]),
    );
    expect(res).toEqual({ status: 400, json: { error: "ERR wrong number of arguments for 'set' command" } });
    expect(await raw.exists(`${P}atomic`)).toBe(0);
    const ok = await post(
      "/multi-exec",
      JSON.stringify([
        ["SET", `${P}atomic`, "a"],
        ["APPEND", `${P}atomic`, "b"],
      ]),
    );
    expect(ok).toEqual({ status: 200, json: [{ result: "OK" }, { result: 2 }] });
  });

  it("accepts path-style commands", async () => {
    const auth = { authorization: `Bearer ${TOKEN}` };
    const set = await fetch(`${bridge.url}/set/${encodeURIComponent(`${P}path`)}`, {
      method: "POST",
      headers: auth,
      body: "from body ✓",
    });
    expect(await set.json()).toEqual({ result: "OK" });
    const get = await fetch(`${bridge.url}/get/${encodeURIComponent(`${P}path`)}`, { headers: auth });
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ result: "from body ✓" });
    const inline = await fetch(`${bridge.url}/set/${encodeURIComponent(`${P}path2`)}/inline`, {
      headers: auth,
    });
    expect(await inline.json()).toEqual({ result: "OK" });
    expect(await raw.get(`${P}path2`)).toBe("inline");
  });

  it("rejects a missing or wrong token with 401", async () => {
    const wrong = await post("/", JSON.stringify(["GET", `${P}x`]), { authorization: "Bearer nope" });
    expect(wrong).toEqual({ status: 401, json: { error: "Unauthorized" } });
    const none = await fetch(`${bridge.url}/`, { method: "POST", body: JSON.stringify(["GET", `${P}x`]) });
    expect(none.status).toBe(401);
    expect(await none.json()).toEqual({ error: "Unauthorized" });
  });

  it("rejects malformed bodies with 400", async () => {
    const bad = await post("/", "[not json");
    expect(bad.status).toBe(400);
    expect((bad.json as { error: string }).error).toMatch(/^ERR failed to parse command/);
    expect((await post("/", "{}")).status).toBe(400);
    expect((await post("/", "[]")).status).toBe(400);
    expect((await post("/", JSON.stringify(["SET", { a: 1 }]))).status).toBe(400);
    expect((await post("/pipeline", JSON.stringify(["GET", "k"]))).status).toBe(400);
  });

  it("refuses commands that would hijack the shared connection", async () => {
    const res = await post("/", JSON.stringify(["SELECT", "1"]));
    expect(res).toEqual({ status: 400, json: { error: "ERR command 'SELECT' is not supported over REST" } });
  });

  it("rejects oversized bodies with 413", async () => {
    const res = await post("/", JSON.stringify(["SET", `${P}big`, "x".repeat(11 * 1024 * 1024)]));
    expect(res.status).toBe(413);
    expect(await raw.exists(`${P}big`)).toBe(0);
  });
});

describe("without Redis", () => {
  it("answers 503 quickly when Redis is unreachable", async () => {
    const port = await freePort();
    const dead = await startUpstashBridge({ redisUrl: `redis://127.0.0.1:${port}`, token: TOKEN });
    try {
      const started = Date.now();
      const res = await fetch(`${dead.url}/`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify(["GET", "k"]),
      });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: string }).error).toMatch(/^ERR redis unavailable/);
      expect(Date.now() - started).toBeLessThan(1000);
      const client = new Redis({ url: dead.url, token: TOKEN, retry: false, enableTelemetry: false });
      await expect(client.get("k")).rejects.toThrow(/redis unavailable/);
    } finally {
      await dead.close();
    }
  });

  it("redisAnswers tells a live Redis from a dead port", async () => {
    expect(await redisAnswers(REDIS_URL)).toBe(true);
    const started = Date.now();
    expect(await redisAnswers(`redis://127.0.0.1:${await freePort()}`, 300)).toBe(false);
    expect(await redisAnswers("redis://10.255.255.1:6379", 300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});
