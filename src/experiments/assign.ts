/**
 * Variant assignment: a user's bucket is XXH64("salt:experiment:user") mod 10,000 (hash.ts says
 * why XXH64), the split maps bucket ranges to variants in the definition's order, and the first
 * answer is kept in Redis so the user keeps the variant when the split changes later.
 */
import type { Cache } from "../cache/redis";
import type { ExperimentRow, ExperimentVariant } from "../db/schema";
import { xxh64String } from "./hash";

export const BUCKETS = 10_000;
/** How long a sticky assignment lives in Redis after it was made. */
export const STICKY_TTL_SECONDS = 90 * 86_400;

/** What assignment and config merging need of an experiment; plain JSON, so it caches in Redis. */
export interface ExperimentDef {
  name: string;
  salt: string;
  control: string;
  variants: ExperimentVariant[];
  split: Record<string, number>;
  active: boolean;
  startsAt: number | null;
  endsAt: number | null;
}

export type ExperimentStatus = "running" | "scheduled" | "ended" | "inactive";

/** How a variant was decided; `stored` is a conversation's, fixed at its start. */
export type AssignmentSource = "sticky" | "hash" | "not_running" | "stored";

export interface Assignment {
  experiment: string;
  variant: string;
  source: AssignmentSource;
}

/** The assignment view of a row. */
export function defOf(row: ExperimentRow): ExperimentDef {
  return {
    name: row.name,
    salt: row.salt,
    control: row.controlVariant,
    variants: row.variants,
    split: row.split,
    active: row.active,
    startsAt: row.startsAt ? row.startsAt.getTime() : null,
    endsAt: row.endsAt ? row.endsAt.getTime() : null,
  };
}

/** Where an experiment stands at `now`: only a running one assigns variants. */
export function statusAt(
  e: { active: boolean; startsAt: number | null; endsAt: number | null },
  now: number,
): ExperimentStatus {
  if (!e.active) return "inactive";
  if (e.startsAt !== null && now < e.startsAt) return "scheduled";
  if (e.endsAt !== null && now >= e.endsAt) return "ended";
  return "running";
}

/** The user's bucket in [0, 10000): the salt makes each experiment's split independent of the others. */
export function bucketOf(def: { name: string; salt: string }, userId: string): number {
  return Number(xxh64String(`${def.salt}:${def.name}:${userId}`) % BigInt(BUCKETS));
}

/**
 * The variant owning a bucket: variant i gets [round(S_{i-1}·10000), round(S_i·10000)), S_i the
 * running sum of the shares in definition order; the last edge is 10000 whatever rounding did.
 */
export function variantAt(
  def: Pick<ExperimentDef, "variants" | "split" | "control">,
  bucket: number,
): string {
  let cumulative = 0;
  const n = def.variants.length;
  for (let i = 0; i < n; i++) {
    const v = def.variants[i] as ExperimentVariant;
    cumulative += def.split[v.name] ?? 0;
    const edge = i === n - 1 ? BUCKETS : Math.round(cumulative * BUCKETS);
    if (bucket < edge) return v.name;
  }
  return def.control;
}

/** The variant the hash alone gives a user (what a Redis outage falls back to). */
export function hashedVariant(def: ExperimentDef, userId: string): string {
  return variantAt(def, bucketOf(def, userId));
}

/** Redis key of a user's sticky variant; the salt is in it, so re-salting starts afresh. */
export function stickyKey(tenantId: string, def: { name: string; salt: string }, userId: string): string {
  return `ce:ab:${tenantId}:${def.name}:${def.salt}:${userId}`;
}

/**
 * Assigns a user in each experiment (in the given order). Experiments that are not running give
 * control and touch nothing. For running ones: one MGET of the sticky keys; a stored variant that
 * still exists wins; otherwise the hash decides and, if Redis answered, one pipeline stores it
 * (SET NX, so a concurrent first request cannot flip it). Redis down or slow: the hash, no writes.
 */
export async function assignUser(
  cache: Cache,
  tenantId: string,
  defs: readonly ExperimentDef[],
  userId: string,
  now = Date.now(),
): Promise<Assignment[]> {
  const running = defs.filter((d) => statusAt(d, now) === "running");
  const keys = running.map((d) => stickyKey(tenantId, d, userId));
  const stored =
    keys.length === 0 ? null : await cache.run<(string | null)[] | null>(null, (r) => r.mget(...keys));
  const writes: { key: string; variant: string; replace: boolean }[] = [];
  const decided = new Map<string, Assignment>();
  running.forEach((d, i) => {
    const kept = stored?.[i] ?? null;
    if (kept !== null && d.variants.some((v) => v.name === kept)) {
      decided.set(d.name, { experiment: d.name, variant: kept, source: "sticky" });
      return;
    }
    const variant = hashedVariant(d, userId);
    decided.set(d.name, { experiment: d.name, variant, source: "hash" });
    // A stored name the experiment no longer has is replaced; a missing one is only ever added.
    if (stored) writes.push({ key: keys[i] as string, variant, replace: kept !== null });
  });
  if (writes.length > 0) {
    await cache.run(null, async (r) => {
      const p = r.pipeline();
      for (const w of writes)
        p.set(
          w.key,
          w.variant,
          w.replace ? { ex: STICKY_TTL_SECONDS } : { ex: STICKY_TTL_SECONDS, nx: true },
        );
      await p.exec();
      return null;
    });
  }
  return defs.map(
    (d) => decided.get(d.name) ?? { experiment: d.name, variant: d.control, source: "not_running" as const },
  );
}
