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
