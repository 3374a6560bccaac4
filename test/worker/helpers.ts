import { env, exports } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { openDb } from "../../src/db/client";
import { loadEnv } from "../../src/env";
import { TEST_ADMIN_TOKEN } from "../local-services";

export const BASE = "http://chatedge.test";

/** Sends a request through the worker's real fetch handler. */
export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`${BASE}${path}`, init));
}

/** A JSON request with a bearer token; `body` is serialized unless it is already a string. */
export function send(
  method: string,
  path: string,
  token: string | undefined,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const h: Record<string, string> = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  if (body !== undefined) h["content-type"] ??= "application/json";
  return call(path, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
}

export const admin = (method: string, path: string, body?: unknown) =>
  send(method, `/admin${path}`, TEST_ADMIN_TOKEN, body);

let seq = 0;
/** A tenant id no other test uses. */
export function uniqueId(stem = "t"): string {
  seq += 1;
  return `${stem}-${Date.now().toString(36)}-${seq}-${Math.floor(Math.random() * 1e6).toString(36)}`;
}

/** Creates a tenant through the admin API and returns its JSON. */
export async function createTenant(overrides: Record<string, unknown> = {}) {
  const id = (overrides.tenant_id as string | undefined) ?? uniqueId();
  const res = await admin("POST", "/tenants", {
    tenant_id: id,
    name: `Tenant ${id}`,
    system_prompt: "You help.",
    ...overrides,
  });
  if (res.status !== 201) throw new Error(`createTenant: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown> & { tenant_id: string };
}

/** Creates a key through the admin API and returns the key text and its record. */
export async function createKey(tenantId: string, kind: "secret" | "publishable" = "secret") {
  const res = await admin("POST", `/tenants/${tenantId}/keys`, { kind, name: `${kind} key` });
  if (res.status !== 201) throw new Error(`createKey: ${res.status} ${await res.text()}`);
  return (await res.json()) as { id: string; key: string; prefix: string; kind: string };
}

/** How many Postgres sessions the relay has carried so far: each one is a trip to Postgres. */
export async function relaySessions(): Promise<number> {
  const res = await fetch(env.RELAY_STATS_URL);
  return ((await res.json()) as { sessions: number }).sessions;
}

/** Runs a query straight against the test database, through the same driver the worker uses. */
export async function query<T = Record<string, unknown>>(text: ReturnType<typeof sql>): Promise<T[]> {
  const loaded = loadEnv(env);
  if (!loaded.ok) throw new Error(loaded.problems.join("; "));
  const h = openDb(loaded.env);
  try {
    const result = await h.db.execute(text);
    return result.rows as T[];
  } finally {
    await h.close();
  }
}

/** Reads a JSON error envelope and checks its shape. */
export async function envelope(res: Response) {
  const body = (await res.json()) as {
    error: { code: string; message: string; requestId: string; details?: unknown };
  };
  if (!body.error || typeof body.error.code !== "string" || typeof body.error.requestId !== "string") {
    throw new Error(`not an error envelope: ${JSON.stringify(body)}`);
  }
  return body.error;
}

/**
 * Hex HMAC-SHA256 of `text` under `secret`, computed here apart from the worker's code: what a
 * webhook receiver checks a signature with, and what a tenant's server signs a user id with.
 */
export async function hmacHex(secret: string, text: string): Promise<string> {
  const enc = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, enc.encode(text)));
  return [...mac].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export { sql };

/**
 * A signed token (`<prefix>.<payload>.<mac>`) with one character of its mac changed: one well inside
 * it, all six of whose bits are the mac's. (Changing the last characters can leave the bytes as they
 * were: the last one carries padding bits that decoding ignores.)
 */
export function tampered(token: string): string {
  const at = token.length - 10;
  return `${token.slice(0, at)}${token[at] === "A" ? "B" : "A"}${token.slice(at + 1)}`;
}
