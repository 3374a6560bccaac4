import { describe, expect, it } from "vitest";
import { type ExperimentDef, hashedVariant, stickyKey } from "../../../src/experiments/assign";
import { chatTenant, completions, upstreamRequests } from "../chat/helpers";
import { eventually, present } from "../eventually";
import { admin, createKey, createTenant, query, send, sql, uniqueId } from "../helpers";
import { createExperiment, defOfJson, sendWith, services, twoArms } from "./helpers";

type Upstream = { model: string; temperature?: number; messages: { role: string; content: string }[] };

/** Chats once as `user` through /v1/chat/completions and returns what the fake OpenAI received. */
async function chatAs(key: string, user: string, redisDown = false): Promise<Upstream> {
  const marker = `question ${uniqueId("q")}`;
  const body = { model: "gpt-4o-mini", user, messages: [{ role: "user", content: marker }] };
  const status = redisDown
    ? (
        await sendWith(
          { UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9" },
          "POST",
          "/v1/chat/completions",
          key,
          body,
        )
      ).status
    : (await completions(key, body)).status;
  expect(status).toBe(200);
  const seen = (await upstreamRequests()).find((r) => JSON.stringify(r.body).includes(marker));
  expect(seen).toBeDefined();
  return seen?.body as unknown as Upstream;
}

/** A user name whose hashed variant is `want` (the worker calls a secret key's user `user:<name>`). */
function nameHashedTo(def: ExperimentDef, want: string): string {
  for (let i = 0; ; i++) {
    const name = `${uniqueId("n")}-${i}`;
    if (hashedVariant(def, `user:${name}`) === want) return name;
  }
}

const systemOf = (u: Upstream) => u.messages.find((m) => m.role === "system")?.content;

describe("experiments on the chat path", () => {
  it("sends variant B's prompt, model and temperature upstream for B users and the tenant's for control", async () => {
    const tenantPrompt = `tenant prompt ${uniqueId("p")}`;
    const variantPrompt = `variant prompt ${uniqueId("p")}`;
    const { id, key } = await chatTenant({ model: "gpt-4o-mini", system_prompt: tenantPrompt });
    const e = await createExperiment(
      id,
      twoArms("prompt-ab", { system_prompt: variantPrompt, model: "gpt-4o", temperature: 0.3 }),
    );
    const bUser = nameHashedTo(defOfJson(e), "B");
    const cUser = nameHashedTo(defOfJson(e), "control");

    const b = await chatAs(key, bUser);
    expect(systemOf(b)).toBe(variantPrompt);
    expect(b.model).toBe("gpt-4o");
    expect(b.temperature).toBe(0.3);
    const c = await chatAs(key, cUser);
    expect(systemOf(c)).toBe(tenantPrompt);
    expect(c.model).toBe("gpt-4o-mini");
    expect(c.temperature).toBeUndefined();

    // Every turn is recorded under its experiment and variant.
    const rows = await eventually(
      async () => {
        const r = await query<{ user_id: string; experiment: string; variant: string }>(
          sql`select user_id, experiment, variant from turns where tenant_id = ${id} order by user_id`,
        );
        expect(r).toHaveLength(2);
        return r;
      },
      { timeoutMs: 20_000 },
    );
    expect(rows).toEqual(
      [
        { user_id: `user:${bUser}`, experiment: "prompt-ab", variant: "B" },
        { user_id: `user:${cUser}`, experiment: "prompt-ab", variant: "control" },
      ].sort((x, y) => (x.user_id < y.user_id ? -1 : 1)),
    );
  });

  it("keeps a user's variant across a split change; Redis down falls back to the hash", async () => {
    const tenantPrompt = `tenant prompt ${uniqueId("p")}`;
    const variantPrompt = `variant prompt ${uniqueId("p")}`;
    const { id, key } = await chatTenant({ model: "gpt-4o-mini", system_prompt: tenantPrompt });
    await createExperiment(id, twoArms("sticky-ab", { system_prompt: variantPrompt }, { control: 1, B: 0 }));
    const early = uniqueId("early");
    expect(systemOf(await chatAs(key, early))).toBe(tenantPrompt);

    const patched = await admin("PATCH", `/tenants/${id}/experiments/sticky-ab`, {
      split: { control: 0, B: 1 },
    });
    expect(patched.status).toBe(200);
    expect(systemOf(await chatAs(key, early))).toBe(tenantPrompt);
    expect(systemOf(await chatAs(key, uniqueId("late")))).toBe(variantPrompt);
    // Without Redis the sticky answer is out of reach: the hash, under the new split, says B.
    expect(systemOf(await chatAs(key, early, true))).toBe(variantPrompt);
    expect(systemOf(await chatAs(key, early))).toBe(tenantPrompt);
  });

  it("gives inactive, not yet started and ended experiments' users the tenant's config", async () => {
    const tenantPrompt = `tenant prompt ${uniqueId("p")}`;
    const { id, key } = await chatTenant({ model: "gpt-4o-mini", system_prompt: tenantPrompt });
    const allB = { control: 0, B: 1 };
    await createExperiment(id, { ...twoArms("a-off", { system_prompt: "off" }, allB), active: false });
    await createExperiment(id, {
      ...twoArms("b-later", { system_prompt: "later" }, allB),
      starts_at: new Date(Date.now() + 86_400_000).toISOString(),
    });
    await createExperiment(id, {
      ...twoArms("c-over", { system_prompt: "over" }, allB),
      ends_at: new Date(Date.now() - 1_000).toISOString(),
    });
    const user = uniqueId("u");
    expect(systemOf(await chatAs(key, user))).toBe(tenantPrompt);
    const row = await eventually(
      async () => {
        const [r] = await query<{ experiment: string | null }>(
          sql`select experiment from turns where tenant_id = ${id} and user_id = ${`user:${user}`}`,
        );
        return present(r, "turn");
      },
      { timeoutMs: 20_000 },
    );
    expect(row.experiment).toBeNull();
  });

  it("merges several running experiments in name order; the first to set a field wins it", async () => {
    const { id, key } = await chatTenant({ model: "gpt-4o-mini", system_prompt: "tenant" });
    const allB = { control: 0, B: 1 };
    await createExperiment(id, twoArms("zeta", { system_prompt: "from zeta", temperature: 0.9 }, allB));
    await createExperiment(id, twoArms("alpha", { system_prompt: "from alpha" }, allB));
    const user = uniqueId("u");
    const up = await chatAs(key, user);
    expect(systemOf(up)).toBe("from alpha");
    expect(up.temperature).toBe(0.9);
    const row = await eventually(
      async () => {
        const [r] = await query<{ experiment: string; variant: string }>(
          sql`select experiment, variant from turns where tenant_id = ${id} and user_id = ${`user:${user}`}`,
        );
        return present(r, "turn");
      },
      { timeoutMs: 20_000 },
    );
    expect(row).toEqual({ experiment: "alpha,zeta", variant: "B,B" });
  });

  it("fixes a conversation's variant at its start, for every turn and its summary", async () => {
    const variantPrompt = `variant prompt ${uniqueId("p")}`;
    const { tenant_id: id } = await createTenant({ model: "gpt-4o-mini", system_prompt: "tenant" });
    const { key, id: keyId } = await createKey(id);
    const e = await createExperiment(
      id,
      twoArms("conv-ab", { system_prompt: variantPrompt }, { control: 0, B: 1 }),
    );
    // No `user`: the conversation's user is the key (as for its messages, which name no user).
    const start = await send("POST", "/v1/conversations", key, {});
    expect(start.status).toBe(201);
    const conv = ((await start.json()) as { id: string }).id;
    // Redis now claims control for this user, and the split says control for everyone: the
    // conversation keeps the B it started with.
    await services().cache.run(null, (r) => r.set(stickyKey(id, defOfJson(e), `key:${keyId}`), "control"));
    await admin("PATCH", `/tenants/${id}/experiments/conv-ab`, { split: { control: 1, B: 0 } });
    for (const text of [`first ${uniqueId("m")}`, `second ${uniqueId("m")}`]) {
      const res = await send("POST", `/v1/conversations/${conv}/messages`, key, { content: text });
      expect(res.status).toBe(200);
      const seen = (await upstreamRequests()).find((r) => JSON.stringify(r.body).includes(text));
      expect(systemOf(seen?.body as unknown as Upstream)).toBe(variantPrompt);
    }
    expect((await send("POST", `/v1/conversations/${conv}/end`, key, { resolved: true })).status).toBe(200);
    const summary = await eventually(
      async () => {
        const [r] = await query<{ experiment: string; variant: string; resolved: boolean }>(
          sql`select experiment, variant, resolved from conversations where tenant_id = ${id} and conversation_id = ${conv}`,
        );
        return present(r, "conversation summary");
      },
      { timeoutMs: 20_000 },
    );
    expect(summary).toEqual({ experiment: "conv-ab", variant: "B", resolved: true });
    const turns = await eventually(
      async () => {
        const r = await query<{ variant: string }>(
          sql`select variant from turns where tenant_id = ${id} and conversation_id = ${conv}`,
        );
        expect(r).toHaveLength(2);
        return r;
      },
      { timeoutMs: 20_000 },
    );
    expect(turns.map((t) => t.variant)).toEqual(["B", "B"]);
    const results = await admin("GET", `/tenants/${id}/experiments/conv-ab/results`);
    const r = (await results.json()) as {
      variants: { name: string; conversations: number; users: number }[];
    };
    expect(r.variants.find((v) => v.name === "B")).toMatchObject({ conversations: 1, users: 1 });
  });
});
