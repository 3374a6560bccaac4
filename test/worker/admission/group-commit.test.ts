/**
 * Group commit (src/admission/group-commit.ts): a call that comes alone writes at once; the writes
 * of calls that come close together run together, in one transaction, before anyone waiting on
 * them answers; a batch that fails leaves nothing and fails every waiter. And through the gate:
 * concurrent admissions answer only once their rows are there, and a settlement riding on the next
 * admit lands in the row.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BUSY_GAP_MS, GroupCommit } from "../../../src/admission/group-commit";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import { freshGate, input } from "./helpers";

/** The object's real storage, counting the transactions it is asked for. */
function counted(storage: DurableObjectStorage) {
  const seen = { transactions: 0 };
  return {
    seen,
    storage: {
      transactionSync<T>(fn: () => T): T {
        seen.transactions += 1;
        return storage.transactionSync(fn);
      },
    },
  };
}

const rows = (sql: SqlStorage) => Number(sql.exec("SELECT COUNT(*) AS n FROM gc_probe").one().n);

/** Runs `check` inside a fresh gate's object: a probe table, and a GroupCommit over the real storage. */
async function withGroup(
  check: (p: { sql: SqlStorage; group: GroupCommit; seen: { transactions: number } }) => Promise<void>,
  onFailure: (err: unknown) => void = () => {},
): Promise<void> {
  const { stub } = await freshGate();
  await runInDurableObject(stub, async (_g: TenantGate, state) => {
    state.storage.sql.exec("CREATE TABLE gc_probe (n INTEGER NOT NULL)");
    const { seen, storage } = counted(state.storage);
    await check({ sql: state.storage.sql, group: new GroupCommit(storage, onFailure), seen });
  });
}

describe("GroupCommit", () => {
  it("writes at once for a call that came alone", async () => {
    await withGroup(async ({ sql, group, seen }) => {
      group.arrive(1_000);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (1)"));
      expect(rows(sql)).toBe(1);
      expect(group.committed()).toBeUndefined();
      // The next call 2 ms later is alone too.
      group.arrive(1_000 + BUSY_GAP_MS);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (2)"));
      expect(rows(sql)).toBe(2);
      // One close behind it writes at once when its caller says so (the gate, while it asks for a lease).
      group.arrive(1_000 + BUSY_GAP_MS + 1, true);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (3)"));
      expect(rows(sql)).toBe(3);
      expect(group.committed()).toBeUndefined();
      expect(seen.transactions).toBe(0);
    });
  });

  it("runs the writes of one turn together, in one transaction, before their waiters go on", async () => {
    await withGroup(async ({ sql, group, seen }) => {
      expect(group.committed()).toBeUndefined();
      // Three calls 1 ms apart: the first writes at once, the other two share a batch.
      group.arrive(1_000);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (0)"));
      expect(rows(sql)).toBe(1);
      for (let n = 1; n <= 2; n++) {
        group.arrive(1_000 + n);
        group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (?)", n));
      }
      // Queued, not yet written.
      expect(rows(sql)).toBe(1);
      const waiting = [group.committed(), group.committed()];
      expect(waiting[0]).toBeDefined();
      expect(waiting[0]).toBe(waiting[1]);
      await Promise.all(waiting);
      expect(rows(sql)).toBe(3);
      expect(seen.transactions).toBe(1);
      expect(group.committed()).toBeUndefined();

      // A read that needs the rows runs the waiting batch at once; its timer then has nothing left.
      group.arrive(1_003);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (4)"));
      const later = group.committed();
      group.flush();
      expect(rows(sql)).toBe(4);
      await later;
      expect(rows(sql)).toBe(4);
      expect(seen.transactions).toBe(2);
      // A call that comes alone while a batch waits joins it: writes keep their order.
      group.arrive(2_000);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (5)"));
      expect(rows(sql)).toBe(5);
      group.arrive(2_001);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (6)"));
      group.arrive(5_000);
      group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (7)"));
      expect(rows(sql)).toBe(5);
      await group.committed();
      expect(
        sql
          .exec("SELECT n FROM gc_probe ORDER BY rowid")
          .toArray()
          .map((r) => r.n),
      ).toEqual([0, 1, 2, 4, 5, 6, 7]);
    });
  });

  it("rolls a failed batch back whole and fails every waiter", async () => {
    const failures: unknown[] = [];
    await withGroup(
      async ({ sql, group }) => {
        group.arrive(1_000);
        group.arrive(1_001);
        group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (1)"));
        group.add(() => sql.exec("INSERT INTO gc_probe (n) VALUES (NULL)"));
        const waiters = [group.committed(), group.committed()].map((p) =>
          p?.then(
            () => "answered",
            (err: unknown) => `failed: ${String(err)}`,
          ),
        );
        for (const w of await Promise.all(waiters)) expect(w).toMatch(/^failed: .*NOT NULL/);
        expect(failures).toHaveLength(1);
        expect(rows(sql)).toBe(0);
      },
      (err) => failures.push(err),
    );
  });
});

describe("the gate's writes in batches", () => {
  it("answers concurrent admissions once their rows are written, and settles through the next admit", async () => {
    const { tenantId, stub, gate } = await freshGate();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) => gate.admit(input(tenantId, { userId: `u${i}` }))),
    );
    const ids = answers.map((a) => (a.ok ? a.reservationId : ""));
    expect(ids.every((id) => id !== "")).toBe(true);
    const stored = await runInDurableObject(stub, (_g: TenantGate, state) =>
      state.storage.sql
        .exec<{ seq: number; tag: string }>("SELECT seq, tag FROM admissions")
        .toArray()
        .map((r) => `rsv_${r.seq.toString(36)}_${r.tag}`),
    );
    expect(new Set(stored)).toEqual(new Set(ids));

    // A settlement riding on an admit is in its row when that admit answers.
    const usage = { model: "gpt-4o-mini", inputTokens: 10, outputTokens: 20 };
    const next = await gate.admit({
      ...input(tenantId, { userId: "u-next" }),
      settle: [{ reservationId: ids[0] as string, usage }],
    });
    expect(next.ok).toBe(true);
    const seq = Number.parseInt((ids[0] as string).split("_")[1] as string, 36);
    const row = await runInDurableObject(stub, (_g: TenantGate, state) =>
      state.storage.sql.exec("SELECT state, act_in, act_out FROM admissions WHERE seq = ?", seq).one(),
    );
    expect(row).toMatchObject({ act_in: 10, act_out: 20 });
    // Settling it again finds the row settled: a duplicate, nothing counted twice.
    expect(await gate.settle(ids[0] as string, usage)).toMatchObject({ status: "duplicate" });
  });
});
