/**
 * A browser's message asks the gate once (`admitAddressed`): its address's window, then admission.
 * An address over its limit admits nothing; bad input changes nothing, also after a valid admit.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { type AddressHit, AddressWindows, TENANT_WIDE } from "../../../src/admission/address-windows";
import { GroupCommit } from "../../../src/admission/group-commit";
import type { TenantGate } from "../../../src/admission/tenant-gate";
import { config, freshGate, input } from "./helpers";

const ADDRESS = "0123456789abcdef0123456789abcdef";

const hit = (tenantId: string, limit = 2): AddressHit => ({
  tenantId,
  address: ADDRESS,
  kind: "message",
  limit,
  windowMs: 60_000,
});

/** Admission rows and address hits the gate holds. */
function counts(stub: DurableObjectStub<TenantGate>) {
  return runInDurableObject(stub, (_g, state) => ({
    admissions: Number(state.storage.sql.exec("SELECT COUNT(*) AS n FROM admissions").one().n),
    hits: Number(state.storage.sql.exec("SELECT COUNT(*) AS n FROM address_hits").one().n),
  }));
}

describe("admitAddressed", () => {
  it("counts the address, then admits; past the address limit it admits nothing", async () => {
    const { tenantId, stub } = await freshGate();
    for (const remaining of [1, 0]) {
      const out = await stub.admitAddressed(hit(tenantId), input(tenantId));
      if (!out.ok) throw new Error(out.message);
      expect(out.value.address).toEqual({ ok: true, limit: 2, remaining });
      expect(out.value.admission?.ok).toBe(true);
    }
    const over = await stub.admitAddressed(hit(tenantId), input(tenantId));
    if (!over.ok) throw new Error(over.message);
    expect(over.value.address).toMatchObject({ ok: false, limit: 2, remaining: 0, retryAfterSeconds: 60 });
    expect(over.value.admission).toBeUndefined();
    expect(await counts(stub)).toEqual({ admissions: 2, hits: 2 });
  });

  it("refuses a hit and an admission of different tenants, changing nothing", async () => {
    const { tenantId, stub } = await freshGate();
    const out = await stub.admitAddressed(hit("another-tenant"), input(tenantId));
    expect(out).toMatchObject({ ok: false, code: "INVALID_INPUT" });
    expect(await counts(stub)).toEqual({ admissions: 0, hits: 0 });
  });

  it("checks every admit's input, also after a valid one", async () => {
    const { tenantId, stub } = await freshGate();
    expect((await stub.admit(input(tenantId))).ok).toBe(true);
    const bad = { ...input(tenantId), config: { ...config(), timezone: "Mars/Olympus" } };
    const out = await stub.admit(bad);
    expect(out).toMatchObject({ ok: false, code: "INVALID_INPUT" });
    if (!out.ok) expect(out.message).toContain("config.timezone");
    const extra = { ...input(tenantId), config: { ...config(), surprise: 1 } };
    expect(await stub.admit(extra as never)).toMatchObject({ ok: false, code: "INVALID_INPUT" });
    expect(await stub.admit({ ...input(tenantId), inputTokens: -1 })).toMatchObject({
      ok: false,
      code: "INVALID_INPUT",
    });
    expect((await counts(stub)).admissions).toBe(1);
  });
});

describe("hitAddresses", () => {
  it("counts a request in several windows only when all have room, each answering its own", async () => {
    const { tenantId, stub } = await freshGate();
    const tenantWide: AddressHit = { ...hit(tenantId, 3), address: TENANT_WIDE, kind: "conversation" };
    const start = (address: string) => [
      { ...hit(tenantId, 1), address, kind: "conversation" as const },
      tenantWide,
    ];
    const a = "a".repeat(32);
    const ok = await stub.hitAddresses(start(a));
    expect(ok).toEqual({
      ok: true,
      value: [
        { ok: true, limit: 1, remaining: 0 },
        { ok: true, limit: 3, remaining: 2 },
      ],
    });
    // The address is full: neither window counts the request.
    const refused = await stub.hitAddresses(start(a));
    if (!refused.ok) throw new Error(refused.message);
    expect(refused.value[0]).toMatchObject({ ok: false, limit: 1 });
    expect(refused.value[1]).toMatchObject({ ok: true, limit: 3 });
    expect((await counts(stub)).hits).toBe(2);
    for (const address of ["b".repeat(32), "c".repeat(32)])
      expect((await stub.hitAddresses(start(address))).ok).toBe(true);
    // The tenant's window is full: a fresh address is refused by it, and counted nowhere.
    const full = await stub.hitAddresses(start("d".repeat(32)));
    if (!full.ok) throw new Error(full.message);
    expect(full.value[0]).toEqual({ ok: true, limit: 1, remaining: 0 });
    expect(full.value[1]).toMatchObject({ ok: false, limit: 3 });
    expect((await counts(stub)).hits).toBe(6);
  });

  it("refuses no hits, more than four, another tenant's, or a malformed one, changing nothing", async () => {
    const { tenantId, stub } = await freshGate();
    for (const bad of [
      [],
      Array.from({ length: 5 }, () => hit(tenantId)),
      [hit(tenantId), hit("another-tenant")],
      [hit(tenantId), { ...hit(tenantId), address: "**" }],
      "not a list",
    ])
      expect(await stub.hitAddresses(bad as never)).toMatchObject({ ok: false, code: "INVALID_INPUT" });
    expect(await counts(stub)).toEqual({ admissions: 0, hits: 0 });
  });
});

describe("address windows in memory", () => {
  it("count as the table does: a new instance reads the hits, and old hits leave the window", async () => {
    const { tenantId, stub } = await freshGate();
    await runInDurableObject(stub, (_g, state) => {
      const t0 = 1_800_000_000_000;
      const group = new GroupCommit(state.storage, () => {});
      const first = new AddressWindows(state.storage.sql, group);
      expect(first.hit(hit(tenantId, 3), t0)).toEqual({ ok: true, limit: 3, remaining: 2 });
      expect(first.hit(hit(tenantId, 3), t0 + 10_000)).toEqual({ ok: true, limit: 3, remaining: 1 });
      // A gate started over (another instance; the first is gone, as only one runs at a time)
      // knows both hits from the table alone.
      group.flush();
      const second = new AddressWindows(state.storage.sql, group);
      expect(second.hit(hit(tenantId, 3), t0 + 20_000)).toEqual({ ok: true, limit: 3, remaining: 0 });
      // Full: refused until the oldest hit leaves (t0 + 60 s), and the refusal is not counted.
      expect(second.hit(hit(tenantId, 3), t0 + 30_000)).toEqual({
        ok: false,
        limit: 3,
        remaining: 0,
        retryAfterSeconds: 30,
        retryAfterMs: 30_000,
      });
      // Once it left, one slot is free in the instance that saw the later hits only from the table.
      expect(second.hit(hit(tenantId, 3), t0 + 60_001)).toEqual({ ok: true, limit: 3, remaining: 0 });
      group.flush();
      expect(Number(state.storage.sql.exec("SELECT COUNT(*) AS n FROM address_hits").one().n)).toBe(4);
    });
  });
});
