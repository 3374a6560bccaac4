import { describe, expect, it } from "vitest";
import { unstable_readConfig } from "wrangler";

/** The part of wrangler's resolved config these tests read (its own type does not resolve here). */
interface Resolved {
  name: string;
  vars: Record<string, unknown>;
  queues: {
    producers?: { binding: string; queue: string }[];
    consumers?: { queue: string; dead_letter_queue?: string }[];
  };
  durable_objects: { bindings: { name: string }[] };
  migrations: { tag: string }[];
  send_email: { name: string }[];
  triggers: { crons?: string[] };
}

/** wrangler.jsonc as wrangler resolves it for one environment (undefined: the top level). */
const configOf = (env?: string): Resolved => unstable_readConfig({ config: "wrangler.jsonc", env });

describe("wrangler.jsonc environments", () => {
  it.each([undefined, "staging", "production"])("%s: the queue-name vars name its own queues", (env) => {
    const c = configOf(env);
    const vars = c.vars as Record<string, string>;
    const analytics = c.queues.consumers?.find((q) => q.queue === vars.ANALYTICS_QUEUE_NAME);
    expect(analytics?.dead_letter_queue).toBe(vars.ANALYTICS_DLQ_NAME);
    expect(c.queues.consumers?.map((q) => q.queue).sort()).toEqual(
      [
        vars.ANALYTICS_QUEUE_NAME,
        vars.ANALYTICS_DLQ_NAME,
        vars.NOTIFY_QUEUE_NAME,
        vars.KNOWLEDGE_QUEUE_NAME,
      ].sort(),
    );
    expect(Object.fromEntries((c.queues.producers ?? []).map((p) => [p.binding, p.queue]))).toEqual({
      ANALYTICS_QUEUE: vars.ANALYTICS_QUEUE_NAME,
      NOTIFY_QUEUE: vars.NOTIFY_QUEUE_NAME,
      KNOWLEDGE_QUEUE: vars.KNOWLEDGE_QUEUE_NAME,
    });
    // What wrangler does not inherit, each environment declares: the worker fails closed without it.
    expect(c.durable_objects.bindings.map((b) => b.name).sort()).toEqual([
      "CONVERSATION",
      "GLOBAL_GATE",
      "TENANT_GATE",
    ]);
    expect(c.migrations.map((m) => m.tag)).toEqual(["v1-admission", "v2-chat"]);
    expect(c.send_email.map((b) => b.name)).toEqual(["SEND_EMAIL"]);
    expect(c.triggers.crons).toHaveLength(1);
  });

  it("gives staging its own worker and queues, and keeps production on today's names", () => {
    const staging = configOf("staging");
    const production = configOf("production");
    expect(staging.name).toBe("chatedge-staging");
    expect(production.name).toBe("chatedge");
    expect(production.vars).toMatchObject({
      ANALYTICS_QUEUE_NAME: "chatedge-analytics",
      ANALYTICS_DLQ_NAME: "chatedge-analytics-dlq",
      NOTIFY_QUEUE_NAME: "chatedge-notify",
      KNOWLEDGE_QUEUE_NAME: "chatedge-knowledge",
    });
    const queues = (c: Resolved) => (c.queues.consumers ?? []).map((q) => q.queue);
    expect(queues(staging).filter((q) => queues(production).includes(q))).toEqual([]);
  });
});
