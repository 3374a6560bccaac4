import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { loadEnv, type RawEnv } from "../../../src/env";
import type { ExperimentDef } from "../../../src/experiments/assign";
import worker from "../../../src/index";
import { newServices, type Services } from "../../../src/services";
import { admin, BASE, send } from "../helpers";

/** The experiment as the API answers it. */
export type ExperimentJson = {
  id: string;
  tenant_id: string;
  name: string;
  variants: { name: string; overrides: Record<string, unknown> }[];
  split: Record<string, number>;
  control: string;
  salt: string;
  active: boolean;
  status: string;
  starts_at: string | null;
  ends_at: string | null;
  created_at: string;
};

/** A two-arm definition: control (no overrides) and B with the given overrides. */
export function twoArms(name: string, b: Record<string, unknown> = {}, split = { control: 0.5, B: 0.5 }) {
  return {
    name,
    variants: [
      { name: "control", overrides: {} },
      { name: "B", overrides: b },
    ],
    split,
  };
}

/** Creates an experiment through the admin API; fails the test on anything but 201. */
export async function createExperiment(
  tenantId: string,
  body: Record<string, unknown>,
): Promise<ExperimentJson> {
  const res = await admin("POST", `/tenants/${tenantId}/experiments`, body);
  if (res.status !== 201) throw new Error(`createExperiment: ${res.status} ${await res.text()}`);
  return (await res.json()) as ExperimentJson;
}

/** The assignment view of an experiment as the API answered it. */
export function defOfJson(e: ExperimentJson): ExperimentDef {
  return {
    name: e.name,
    salt: e.salt,
    control: e.control,
    variants: e.variants,
    split: e.split,
    active: e.active,
    startsAt: e.starts_at ? Date.parse(e.starts_at) : null,
    endsAt: e.ends_at ? Date.parse(e.ends_at) : null,
  };
}

/** Per-request services like the worker builds them, for calling src functions directly. */
export function services(overrides: Partial<RawEnv> = {}): Services {
  const loaded = loadEnv({ ...env, ...overrides });
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  return newServices(loaded.env);
}

/** Calls the worker's fetch with an altered environment (Redis pointed nowhere, say). */
export async function sendWith(
  overrides: Partial<RawEnv>,
  method: string,
  path: string,
  key: string,
  body: unknown,
) {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    }),
    { ...env, ...overrides },
    ctx,
  );
  const text = await res.text();
  await waitOnExecutionContext(ctx);
  return { status: res.status, text };
}

/** The tenant's audit entries, newest first. */
export async function auditEntries(tenantId: string) {
  const res = await admin("GET", `/tenants/${tenantId}/audit?limit=500`);
  return ((await res.json()) as { entries: { action: string; actor: string; target: string }[] }).entries;
}

export { send };
