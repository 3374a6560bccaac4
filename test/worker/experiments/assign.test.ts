import { describe, expect, it } from "vitest";
import {
  assignUser,
  BUCKETS,
  bucketOf,
  type ExperimentDef,
  hashedVariant,
  STICKY_TTL_SECONDS,
  statusAt,
  stickyKey,
  variantAt,
} from "../../../src/experiments/assign";
import { xxh64String } from "../../../src/experiments/hash";
import { chiSquareSurvival, sampleRatioMismatch } from "../../../src/experiments/stats";
import { uniqueId } from "../helpers";
import { services } from "./helpers";

const def = (o: Partial<ExperimentDef> = {}): ExperimentDef => ({
  name: "prompt-test",
  salt: "salt-one",
  control: "control",
  variants: [
    { name: "control", overrides: {} },
    { name: "B", overrides: { system_prompt: "Be brief." } },
  ],
  split: { control: 0.5, B: 0.5 },
  active: true,
  startsAt: null,
  endsAt: null,
  ...o,
});

describe("XXH64", () => {
  // The xxHash reference vectors (seed 0), as published with the reference implementation and its
  // ports (xxhsum; python-xxhash): they pin the exact function, so buckets can be recomputed anywhere.
  it.each([
    ["", 0xef46db3751d8e999n],
    ["a", 0xd24ec4f1a98c6e5bn],
    ["abc", 0x44bc2cf5ad770999n],
    ["asdf", 0x415872f599cea71en],
    ["Call me Ishmael.", 0x6d04390fc9d61a90n],
    ["Nobody inspects the spammish repetition", 0xfbcea83c8a378bf1n],
  ])("xxh64(%j)", (text, expected) => {
    expect(xxh64String(text)).toBe(expected);
  });
});

describe("bucketing", () => {
  it("splits 100,000 simulated users within ±0.5 percentage points of 50/30/20", () => {
    // Tolerance: the binomial SD of a share at n = 100,000 is at most 0.16 points, so ±0.5 points
    // is three SDs; the SRM test on the same counts must not flag either.
    const d = def({
      variants: [
        { name: "control", overrides: {} },
        { name: "B", overrides: {} },
        { name: "C", overrides: {} },
      ],
      split: { control: 0.5, B: 0.3, C: 0.2 },
    });
    const counts: Record<string, number> = { control: 0, B: 0, C: 0 };
    const perBucket = new Array<number>(BUCKETS).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const user = `user:${i}`;
      const b = bucketOf(d, user);
      perBucket[b] = (perBucket[b] ?? 0) + 1;
      const v = hashedVariant(d, user);
      counts[v] = (counts[v] ?? 0) + 1;
    }
    expect(Math.abs((counts.control ?? 0) / 100_000 - 0.5)).toBeLessThan(0.005);
    expect(Math.abs((counts.B ?? 0) / 100_000 - 0.3)).toBeLessThan(0.005);
    expect(Math.abs((counts.C ?? 0) / 100_000 - 0.2)).toBeLessThan(0.005);
    expect(sampleRatioMismatch(counts, d.split)?.flagged).toBe(false);
    // Uniform over all 10,000 buckets: chi-square with 9,999 df, not rejected at 0.001.
    const chi = perBucket.reduce((s, o) => s + (o - 10) ** 2 / 10, 0);
    expect(chiSquareSurvival(chi, BUCKETS - 1)).toBeGreaterThan(0.001);
  });

  it("assigns independently across experiments: salts decorrelate the splits", () => {
    const a = def({ name: "exp-a", salt: "salt-a" });
    const b = def({ name: "exp-b", salt: "salt-b" });
    const table = [
      [0, 0],
      [0, 0],
    ];
    for (let i = 0; i < 100_000; i++) {
      const user = `visitor:${i}`;
      const row = table[hashedVariant(a, user) === "B" ? 1 : 0] as number[];
      const j = hashedVariant(b, user) === "B" ? 1 : 0;
      row[j] = (row[j] ?? 0) + 1;
    }
    // Chi-square test of independence on the 2x2 table (df 1): not rejected at 0.001.
    const n = 100_000;
    const rows = table.map((r) => (r[0] ?? 0) + (r[1] ?? 0));
    const cols = [0, 1].map((j) => (table[0]?.[j] ?? 0) + (table[1]?.[j] ?? 0));
    let chi = 0;
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 2; j++) {
        const e = ((rows[i] ?? 0) * (cols[j] ?? 0)) / n;
        chi += ((table[i]?.[j] ?? 0) - e) ** 2 / e;
      }
    expect(chiSquareSurvival(chi, 1)).toBeGreaterThan(0.001);
  });

  it("maps buckets to variants by cumulative share in definition order", () => {
    const d = def({
      variants: [
        { name: "A", overrides: {} },
        { name: "Z", overrides: {} },
        { name: "B", overrides: {} },
      ],
      split: { A: 0.25, Z: 0, B: 0.75 },
      control: "A",
    });
    expect(variantAt(d, 0)).toBe("A");
    expect(variantAt(d, 2499)).toBe("A");
    expect(variantAt(d, 2500)).toBe("B");
    expect(variantAt(d, 9999)).toBe("B");
    const thirds = def({
      variants: ["x", "y", "z"].map((name) => ({ name, overrides: {} })),
      split: { x: 1 / 3, y: 1 / 3, z: 1 / 3 },
    });
    expect([3332, 3333, 6666, 6667, 9999].map((b) => variantAt(thirds, b))).toEqual([
      "x",
      "y",
      "y",
      "z",
      "z",
    ]);
  });

  it("knows when an experiment runs", () => {
    const now = Date.UTC(2030, 0, 15);
    expect(statusAt({ active: false, startsAt: null, endsAt: null }, now)).toBe("inactive");
    expect(statusAt({ active: true, startsAt: now + 1, endsAt: null }, now)).toBe("scheduled");
    expect(statusAt({ active: true, startsAt: null, endsAt: now }, now)).toBe("ended");
    expect(statusAt({ active: true, startsAt: now, endsAt: now + 1 }, now)).toBe("running");
  });
});

/** A user whose hashed variant in `d` is `want`. */
function userHashedTo(d: ExperimentDef, want: string, stem: string): string {
  for (let i = 0; ; i++) if (hashedVariant(d, `${stem}:${i}`) === want) return `${stem}:${i}`;
}

describe("sticky assignment in Redis", () => {
  it("keeps a user's variant when the split changes; new users follow the new split", async () => {
    const svc = services();
    const tenant = uniqueId("ab");
    const before = def({ split: { control: 1, B: 0 } });
    const alice = `user:${uniqueId("alice")}`;
    expect(await assignUser(svc.cache, tenant, [before], alice)).toEqual([
      { experiment: "prompt-test", variant: "control", source: "hash" },
    ]);
    const key = stickyKey(tenant, before, alice);
    expect(await svc.cache.run(null, (r) => r.get(key))).toBe("control");
    const ttl = await svc.cache.run(0, (r) => r.ttl(key));
    expect(ttl).toBeGreaterThan(STICKY_TTL_SECONDS - 60);

    const after = def({ split: { control: 0, B: 1 } });
    expect(await assignUser(svc.cache, tenant, [after], alice)).toEqual([
      { experiment: "prompt-test", variant: "control", source: "sticky" },
    ]);
    const bob = `user:${uniqueId("bob")}`;
    expect((await assignUser(svc.cache, tenant, [after], bob))[0]).toMatchObject({
      variant: "B",
      source: "hash",
    });
  });

  it("replaces a stored variant the experiment no longer has", async () => {
    const svc = services();
    const tenant = uniqueId("ab");
    const d = def();
    const user = `user:${uniqueId("u")}`;
    await svc.cache.run(null, (r) => r.set(stickyKey(tenant, d, user), "retired"));
    const [a] = await assignUser(svc.cache, tenant, [d], user);
    expect(a).toMatchObject({ variant: hashedVariant(d, user), source: "hash" });
    expect(await svc.cache.run(null, (r) => r.get(stickyKey(tenant, d, user)))).toBe(a?.variant);
  });

  it("falls back to the hash when Redis is down, and writes nothing", async () => {
    const tenant = uniqueId("ab");
    const d = def();
    const user = userHashedTo(d, "B", `user:${uniqueId("carol")}`);
    // Real Redis says control; the hash says B. With Redis unreachable, the hash answers.
    await services().cache.run(null, (r) => r.set(stickyKey(tenant, d, user), "control"));
    const down = services({ UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" });
    expect(await assignUser(down.cache, tenant, [d], user)).toEqual([
      { experiment: "prompt-test", variant: "B", source: "hash" },
    ]);
    expect(await services().cache.run(null, (r) => r.get(stickyKey(tenant, d, user)))).toBe("control");
  });

  it("gives control for inactive, scheduled and ended experiments, without touching Redis", async () => {
    const svc = services();
    const tenant = uniqueId("ab");
    const now = Date.now();
    const defs = [
      def({ name: "a-inactive", active: false, split: { control: 0, B: 1 } }),
      def({ name: "b-scheduled", startsAt: now + 3_600_000, split: { control: 0, B: 1 } }),
      def({ name: "c-ended", endsAt: now - 1, split: { control: 0, B: 1 } }),
      def({ name: "d-running", split: { control: 0, B: 1 } }),
    ];
    const user = `user:${uniqueId("dave")}`;
    expect(await assignUser(svc.cache, tenant, defs, user, now)).toEqual([
      { experiment: "a-inactive", variant: "control", source: "not_running" },
      { experiment: "b-scheduled", variant: "control", source: "not_running" },
      { experiment: "c-ended", variant: "control", source: "not_running" },
      { experiment: "d-running", variant: "B", source: "hash" },
    ]);
    const stored = await svc.cache.run<(string | null)[]>([], (r) =>
      r.mget(...defs.map((d) => stickyKey(tenant, d, user))),
    );
    expect(stored).toEqual([null, null, null, "B"]);
  });
});
