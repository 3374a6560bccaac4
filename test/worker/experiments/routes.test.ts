import { describe, expect, it } from "vitest";
import { admin, createKey, createTenant, envelope, send } from "../helpers";
import { auditEntries, createExperiment, type ExperimentJson, twoArms } from "./helpers";

describe("admin experiments API", () => {
  it("creates, reads, lists, updates and deletes, auditing each change", async () => {
    const t = await createTenant();
    const created = await createExperiment(t.tenant_id, {
      ...twoArms("prompt-v2", { system_prompt: "Be concise.", temperature: 0.2 }, { control: 0.4, B: 0.6 }),
      description: "shorter answers",
      starts_at: "2030-01-01T00:00:00Z",
      ends_at: "2030-02-01T00:00:00Z",
    });
    expect(created).toMatchObject({
      tenant_id: t.tenant_id,
      name: "prompt-v2",
      control: "control",
      active: true,
      status: "scheduled",
      split: { control: 0.4, B: 0.6 },
      starts_at: "2030-01-01T00:00:00.000Z",
      ends_at: "2030-02-01T00:00:00.000Z",
      variants: [
        { name: "control", overrides: {} },
        { name: "B", overrides: { system_prompt: "Be concise.", temperature: 0.2 } },
      ],
    });
    expect(created.salt).toMatch(/^[A-Za-z0-9_-]{16}$/);

    const one = await admin("GET", `/tenants/${t.tenant_id}/experiments/prompt-v2`);
    expect(one.status).toBe(200);
    expect(((await one.json()) as ExperimentJson).id).toBe(created.id);

    await createExperiment(t.tenant_id, twoArms("another"));
    const list = (await (await admin("GET", `/tenants/${t.tenant_id}/experiments`)).json()) as {
      experiments: ExperimentJson[];
    };
    expect(list.experiments.map((e) => e.name)).toEqual(["another", "prompt-v2"]);

    const patched = await admin("PATCH", `/tenants/${t.tenant_id}/experiments/prompt-v2`, {
      split: { control: 0.5, B: 0.5 },
      starts_at: null,
      ends_at: null,
    });
    expect(patched.status).toBe(200);
    expect((await patched.json()) as ExperimentJson).toMatchObject({
      split: { control: 0.5, B: 0.5 },
      status: "running",
      salt: created.salt,
    });

    const paused = await admin("PATCH", `/tenants/${t.tenant_id}/experiments/prompt-v2`, { active: false });
    expect(((await paused.json()) as ExperimentJson).status).toBe("inactive");

    const deleted = await admin("DELETE", `/tenants/${t.tenant_id}/experiments/prompt-v2`);
    expect(deleted.status).toBe(200);
    expect((await admin("GET", `/tenants/${t.tenant_id}/experiments/prompt-v2`)).status).toBe(404);

    const actions = (await auditEntries(t.tenant_id))
      .filter((e) => e.action.startsWith("experiment."))
      .map((e) => `${e.action} ${e.target} ${e.actor}`);
    expect(actions).toEqual([
      "experiment.delete prompt-v2 admin",
      "experiment.update prompt-v2 admin",
      "experiment.update prompt-v2 admin",
      "experiment.create another admin",
      "experiment.create prompt-v2 admin",
    ]);
  });

  it("answers 404 for an unknown tenant or experiment and 409 for a duplicate name", async () => {
    const t = await createTenant();
    expect((await admin("POST", "/tenants/no-such-tenant-x/experiments", twoArms("x"))).status).toBe(404);
    expect((await admin("GET", "/tenants/no-such-tenant-x/experiments")).status).toBe(404);
    expect((await admin("GET", `/tenants/${t.tenant_id}/experiments/nope`)).status).toBe(404);
    expect((await admin("PATCH", `/tenants/${t.tenant_id}/experiments/nope`, { active: false })).status).toBe(
      404,
    );
    expect((await admin("DELETE", `/tenants/${t.tenant_id}/experiments/nope`)).status).toBe(404);
    await createExperiment(t.tenant_id, twoArms("dup"));
    const again = await admin("POST", `/tenants/${t.tenant_id}/experiments`, twoArms("dup"));
    expect(again.status).toBe(409);
    expect((await envelope(again)).code).toBe("CONFLICT");
  });

  it("needs the admin token", async () => {
    const t = await createTenant();
    const res = await send("GET", `/admin/tenants/${t.tenant_id}/experiments`, "wrong-token-wrong-token");
    expect(res.status).toBe(401);
  });

  it("caps the experiments active at once at 10; paused ones do not count", async () => {
    const t = await createTenant();
    for (let i = 0; i < 10; i++) await createExperiment(t.tenant_id, twoArms(`live-${i}`));
    const over = await admin("POST", `/tenants/${t.tenant_id}/experiments`, twoArms("live-10"));
    expect(over.status).toBe(409);
    expect((await envelope(over)).message).toContain("at most 10");
    await createExperiment(t.tenant_id, { ...twoArms("paused"), active: false });
    const resume = await admin("PATCH", `/tenants/${t.tenant_id}/experiments/paused`, { active: true });
    expect(resume.status).toBe(409);
    await admin("PATCH", `/tenants/${t.tenant_id}/experiments/live-0`, { active: false });
    expect(
      (await admin("PATCH", `/tenants/${t.tenant_id}/experiments/paused`, { active: true })).status,
    ).toBe(200);
  });
});

describe("bad definitions answer 400 and write nothing", () => {
  const arms = (o: Record<string, unknown>) => ({ ...twoArms("bad"), ...o });
  const cases: [string, Record<string, unknown>, string][] = [
    ["shares that sum to 0.9", arms({ split: { control: 0.4, B: 0.5 } }), "split: shares must sum to 1"],
    ["a share above 1", arms({ split: { control: 1.5, B: -0.5 } }), "split"],
    ["a split key that is no variant", arms({ split: { control: 0.5, C: 0.5 } }), "not a variant: C"],
    ["a variant without a share", arms({ split: { control: 1 } }), "no share for B"],
    ["a control that is no variant", arms({ control: "baseline" }), "control baseline is not a variant"],
    [
      "an end before the start",
      arms({ starts_at: "2030-02-01T00:00:00Z", ends_at: "2030-01-01T00:00:00Z" }),
      "ends_at must be after starts_at",
    ],
    [
      "an override outside the four",
      arms({ variants: [{ name: "control" }, { name: "B", overrides: { top_p: 0.5 } }] }),
      "variants.1.overrides",
    ],
    [
      "a temperature out of bounds",
      arms({ variants: [{ name: "control" }, { name: "B", overrides: { temperature: 3 } }] }),
      "temperature",
    ],
    [
      "max tokens of 0",
      arms({ variants: [{ name: "control" }, { name: "B", overrides: { max_tokens: 0 } }] }),
      "max_tokens",
    ],
    [
      "one variant",
      arms({ variants: [{ name: "control" }], split: { control: 1 } }),
      "at least two variants",
    ],
    [
      "a duplicate variant",
      arms({ variants: [{ name: "B" }, { name: "B" }], split: { B: 1 }, control: "B" }),
      "variant B appears twice",
    ],
    ["a name with spaces", arms({ name: "Bad Name" }), "name"],
    ["an unknown field", arms({ traffic: 1 }), "traffic"],
  ];

  it.each(cases)("%s", async (_, body, message) => {
    const t = await createTenant();
    const audit = (await auditEntries(t.tenant_id)).length;
    const res = await admin("POST", `/tenants/${t.tenant_id}/experiments`, body);
    expect(res.status).toBe(400);
    const err = await envelope(res);
    expect(err.code).toBe("VALIDATION_FAILED");
    expect(err.message).toContain(message);
    const list = (await (await admin("GET", `/tenants/${t.tenant_id}/experiments`)).json()) as {
      experiments: unknown[];
    };
    expect(list.experiments).toEqual([]);
    expect((await auditEntries(t.tenant_id)).length).toBe(audit);
  });

  it("checks a change against the whole definition and leaves the experiment as it was", async () => {
    const t = await createTenant();
    const e = await createExperiment(t.tenant_id, twoArms("keep"));
    const audit = (await auditEntries(t.tenant_id)).length;
    // A third variant without a share in the split: the merged definition is refused.
    const res = await admin("PATCH", `/tenants/${t.tenant_id}/experiments/keep`, {
      variants: [{ name: "control" }, { name: "B" }, { name: "C", overrides: { model: "gpt-4o" } }],
    });
    expect(res.status).toBe(400);
    expect((await envelope(res)).message).toContain("no share for C");
    const now = (await (
      await admin("GET", `/tenants/${t.tenant_id}/experiments/keep`)
    ).json()) as ExperimentJson;
    expect(now.variants).toEqual(e.variants);
    expect((await auditEntries(t.tenant_id)).length).toBe(audit);
    const empty = await admin("PATCH", `/tenants/${t.tenant_id}/experiments/keep`, {});
    expect(empty.status).toBe(400);
  });
});

describe("tenant-key experiments API", () => {
  it("lets a secret key manage its own tenant's experiments, audited as the key", async () => {
    const t = await createTenant();
    const { key, id: keyId } = await createKey(t.tenant_id);
    const res = await send("POST", "/v1/experiments", key, twoArms("via-key", { model: "gpt-4o" }));
    expect(res.status).toBe(201);
    expect(((await res.json()) as ExperimentJson).tenant_id).toBe(t.tenant_id);
    const patched = await send("PATCH", "/v1/experiments/via-key", key, { split: { control: 0.9, B: 0.1 } });
    expect(patched.status).toBe(200);
    const one = (await (await send("GET", "/v1/experiments/via-key", key)).json()) as ExperimentJson;
    expect(one.split).toEqual({ control: 0.9, B: 0.1 });
    const list = (await (await send("GET", "/v1/experiments", key)).json()) as {
      experiments: ExperimentJson[];
    };
    expect(list.experiments.map((e) => e.name)).toEqual(["via-key"]);
    const actors = (await auditEntries(t.tenant_id)).filter((e) => e.action.startsWith("experiment."));
    expect(actors.map((e) => `${e.action} ${e.actor}`)).toEqual([
      `experiment.update key:${keyId}`,
      `experiment.create key:${keyId}`,
    ]);
    const bad = await send("POST", "/v1/experiments", key, {
      ...twoArms("bad"),
      split: { control: 1, B: 1 },
    });
    expect(bad.status).toBe(400);
  });

  it("hides other tenants' experiments: their names are 404", async () => {
    const a = await createTenant();
    const b = await createTenant();
    await createExperiment(a.tenant_id, twoArms("secret-test"));
    const { key: bKey } = await createKey(b.tenant_id);
    expect((await send("GET", "/v1/experiments/secret-test", bKey)).status).toBe(404);
    expect((await send("GET", "/v1/experiments/secret-test/results", bKey)).status).toBe(404);
    expect((await send("PATCH", "/v1/experiments/secret-test", bKey, { active: false })).status).toBe(404);
    const list = (await (await send("GET", "/v1/experiments", bKey)).json()) as { experiments: unknown[] };
    expect(list.experiments).toEqual([]);
    const still = (await (
      await admin("GET", `/tenants/${a.tenant_id}/experiments/secret-test`)
    ).json()) as ExperimentJson;
    expect(still.active).toBe(true);
  });

  it("refuses publishable keys and missing keys", async () => {
    const t = await createTenant({ allowed_origins: ["https://shop.example"] });
    const { key } = await createKey(t.tenant_id, "publishable");
    const res = await send("GET", "/v1/experiments", key, undefined, { origin: "https://shop.example" });
    expect(res.status).toBe(403);
    expect((await send("GET", "/v1/experiments", undefined)).status).toBe(401);
  });
});
