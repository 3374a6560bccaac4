/**
 * Seeds the demo tenant and keeps its secret key in .dev-data/demo-key.json, so every `npm run dev`
 * prints a key that works. Keys are stored hashed; the file is the only copy of the key itself.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import pg from "pg";
import { type KeyKind, sha256Hex } from "../src/auth/keys.ts";
import { insertKey, insertTenants, type TenantSeed } from "./seed-tenants.ts";

export const DEMO_TENANT = "demo";

const DEMO_CONFIG = {
  name: "Demo Shop",
  systemPrompt: "You are the friendly support assistant of Demo Shop. Answer briefly and helpfully.",
  model: "mock",
  customGreeting: "Hi! I'm the Demo Shop assistant. Ask me anything about your order.",
  blockedTopics: ["medical advice"],
  escalationEmail: "support@demo-shop.example",
  allowedOrigins: ["http://localhost:8787", "http://127.0.0.1:8787"],
} satisfies Omit<TenantSeed, "id">;

interface SavedKeys {
  secret: string;
  publishable: string;
}

/** Creates the demo tenant if missing and returns working secret and publishable keys. */
export async function seedDemo(databaseUrl: string, keyFile: string): Promise<SavedKeys> {
  const client = new pg.Client({ connectionString: databaseUrl });
  client.on("error", () => {});
  await client.connect();
  try {
    await insertTenants(client, [{ id: DEMO_TENANT, ...DEMO_CONFIG }]);
    const saved = existsSync(keyFile)
      ? (JSON.parse(readFileSync(keyFile, "utf8")) as Partial<SavedKeys>)
      : {};
    const out: SavedKeys = {
      secret: await ensureKey(client, "secret", saved.secret),
      publishable: await ensureKey(client, "publishable", saved.publishable),
    };
    mkdirSync(dirname(keyFile), { recursive: true });
    writeFileSync(keyFile, `${JSON.stringify(out, null, 2)}\n`, { mode: 0o600 });
    return out;
  } finally {
    await client.end();
  }
}

/** Keeps a saved key when the database still knows it unrevoked; otherwise makes a new one. */
async function ensureKey(client: pg.Client, kind: KeyKind, saved: string | undefined) {
  if (saved) {
    const { rowCount } = await client.query(
      "select 1 from api_keys where hash = $1 and tenant_id = $2 and revoked_at is null",
      [await sha256Hex(saved), DEMO_TENANT],
    );
    if (rowCount) return saved;
  }
  const made = await insertKey(client, DEMO_TENANT, kind, `demo ${kind} key`);
  await client.query(
    "insert into audit_log (tenant_id, actor, action, target, request_id, data) values ($1, 'local/seed', 'key.create', $2, 'seed', $3)",
    [DEMO_TENANT, made.prefix, JSON.stringify({ kind })],
  );
  return made.key;
}

/** The demo tenant's tool: the example in examples/order-status, which `npm run dev` runs beside the worker. */
export const DEMO_TOOL = {
  name: "order_status",
  description:
    "Looks up the status of a Demo Shop order by its number: shipping status, carrier, tracking number, estimated delivery and items.",
  parameters: {
    type: "object",
    properties: { order_id: { type: "string", description: "The order number, e.g. 1234" } },
    required: ["order_id"],
    additionalProperties: false,
  },
};

/**
 * Registers (or re-points) the demo tenant's order_status tool at `toolUrl`, allows it in the demo
 * tenant's allowed_tools, and rotates its secret: the admin API shows a secret only when it makes
 * one, and the tool worker started next must be given it. Through the API, so caches and the
 * audit log see it like any change. Returns the secret.
 */
export async function registerDemoTool(base: string, adminToken: string, toolUrl: string): Promise<string> {
  const headers = { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" };
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${base}/admin/tenants/${DEMO_TENANT}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const target = { kind: "https", url: toolUrl };
  const existing = await api("GET", `/tools/${DEMO_TOOL.name}`);
  let secret: string | undefined;
  if (existing.status === 404) {
    const made = await api("POST", "/tools", { ...DEMO_TOOL, target });
    if (made.status !== 201)
      throw new Error(`registering the demo tool: ${made.status} ${JSON.stringify(made.json)}`);
    secret = made.json.secret as string;
  } else {
    const patched = await api("PATCH", `/tools/${DEMO_TOOL.name}`, { target, enabled: true });
    if (patched.status !== 200) throw new Error(`updating the demo tool: ${patched.status}`);
    const rotated = await api("POST", `/tools/${DEMO_TOOL.name}/secret`);
    if (rotated.status !== 200) throw new Error(`rotating the demo tool's secret: ${rotated.status}`);
    secret = rotated.json.secret as string;
  }
  const tenant = await api("GET", "");
  const allowed = (tenant.json.allowed_tools as string[] | undefined) ?? [];
  if (!allowed.includes(DEMO_TOOL.name)) {
    const res = await api("PATCH", "", { allowed_tools: [...allowed, DEMO_TOOL.name] });
    if (res.status !== 200) throw new Error(`allowing the demo tool: ${res.status}`);
  }
  return secret;
}
