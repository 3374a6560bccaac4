/**
 * drizzle/0023_partitions on a database that already has rows (issue 19, item 5): the schema as it
 * was before (the migrations up to 0022, run by drizzle's migrator from a copy of the folder whose
 * journal stops there), rows in it, then every migration as `npm run db:migrate` runs them.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/node-postgres";
import { migrate } from "drizzle-orm/node-postgres/migrator";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { migrateDatabase, recreateDatabase } from "../../local/migrate.ts";
import { MONTHS_AHEAD, monthPartition } from "../../src/privacy/partitions.ts";
import { TEST_POSTGRES_URL } from "../local-services.ts";

const MIGRATIONS = fileURLToPath(new URL("../../drizzle", import.meta.url));
const BEFORE = "0022_first_token_histogram";
const url = `${TEST_POSTGRES_URL}/chatedge_partition_migration_${process.pid}`;
let dir: string;
let client: pg.Client;

/** Migrates `url` up to and including the migration tagged `last`. */
async function migrateUpTo(last: string): Promise<void> {
  await cp(MIGRATIONS, dir, { recursive: true });
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(await readFile(journalPath, "utf8")) as { entries: { tag: string }[] };
  const end = journal.entries.findIndex((e) => e.tag === last);
  expect(end).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, end + 1);
  await writeFile(journalPath, JSON.stringify(journal));
  await migrate(drizzle({ client }), { migrationsFolder: dir });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "chatedge-migrations-"));
  await recreateDatabase(url);
  client = new pg.Client({ connectionString: url });
  client.on("error", () => {});
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await rm(dir, { recursive: true, force: true });
  const admin = new pg.Client({ connectionString: `${TEST_POSTGRES_URL}/postgres` });
  await admin.connect();
  await admin.query(`drop database if exists "chatedge_partition_migration_${process.pid}" with (force)`);
  await admin.end();
});

describe("the partitioning migration", () => {
  it("keeps every row, files it under its month, and keys on the partition column", async () => {
    await migrateUpTo(BEFORE);
    expect((await client.query("select relkind from pg_class where relname = 'turns'")).rows).toEqual([
      { relkind: "r" },
    ]);
    // 200 turns and 50 conversations spread over the last 14 months, as the consumer writes them.
    await client.query(`insert into turns (id, tenant_id, conversation_id, user_id, at, day, turn_index, model,
        input_tokens, output_tokens, cost_usd, latency_ms, outcome, tools_used, channel)
      select gen_random_uuid(), 'acme', 'c' || (g % 50), 'visitor:v' || (g % 7), at, at::date, g, 'mock',
        g, 1, 0.001, 100, 'ok', '[]', 'web'
      from generate_series(0, 199) g, lateral (select now() - g * interval '2 days' as at) t`);
    await client.query(`insert into conversations (id, tenant_id, conversation_id, user_id, day, started_at,
        ended_at, turn_count, resolved, escalated, total_tokens, total_cost_usd, avg_response_ms, tools_used,
        channel, error_count)
      select gen_random_uuid(), 'acme', 'c' || g, 'visitor:v' || (g % 7), s::date, s, s + interval '5 minutes',
        4, true, false, 10, 0.004, 100, '[]', 'web', 0
      from generate_series(0, 49) g, lateral (select now() - g * interval '8 days' as s) t`);
    const fingerprint = async () =>
      (
        await client.query(`select
          (select count(*)::int from turns) as turns,
          (select sum(input_tokens)::int from turns) as tokens,
          (select count(*)::int from conversations) as conversations,
          (select md5(string_agg(id::text || at::text, ',' order by id)) from turns) as turn_ids,
          (select md5(string_agg(id::text || conversation_id, ',' order by id)) from conversations) as conv_ids`)
      ).rows[0];
    const before = await fingerprint();
    expect(before).toMatchObject({ turns: 200, conversations: 50, tokens: 19_900 });

    await migrateDatabase(url);

    expect(await fingerprint()).toEqual(before);
    const kinds = await client.query(
      "select relname, relkind from pg_class where relname in ('turns', 'conversations') order by relname",
    );
    expect(kinds.rows).toEqual([
      { relname: "conversations", relkind: "p" },
      { relname: "turns", relkind: "p" },
    ]);
    // One partition per month with rows (about 14 of them), the months ahead, and an empty default.
    const homes = await client.query(`select tableoid::regclass::text as p, count(*)::int as n
      from turns group by 1 order by 1`);
    expect(homes.rows.length).toBeGreaterThanOrEqual(14);
    for (const r of homes.rows) expect(r.p).toMatch(/^turns_p\d{6}$/);
    const oldest = new Date(Date.now() - 199 * 2 * 86_400_000);
    const month = `${oldest.getUTCFullYear()}${String(oldest.getUTCMonth() + 1).padStart(2, "0")}`;
    expect(homes.rows[0].p).toBe(`turns_p${month}`);
    const parts =
      await client.query(`select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
      where i.inhparent = 'conversations'::regclass`);
    const names = parts.rows.map((r) => r.relname);
    expect(names).toContain("conversations_default");
    for (let i = 0; i <= MONTHS_AHEAD; i++)
      expect(names).toContain(monthPartition("conversations", Date.now(), i).name);
    expect((await client.query("select count(*)::int as n from turns_default")).rows[0].n).toBe(0);

    // The keys the writers rely on: a turn is unique by (id, at), a conversation's summary by
    // (tenant, conversation, started_at).
    const { rows } = await client.query(`select conname, pg_get_constraintdef(oid) as def from pg_constraint
      where conrelid in ('turns'::regclass, 'conversations'::regclass) and contype = 'p' order by conname`);
    expect(rows).toEqual([
      { conname: "conversations_id_started_at_pk", def: "PRIMARY KEY (id, started_at)" },
      { conname: "turns_id_at_pk", def: "PRIMARY KEY (id, at)" },
    ]);
    const dup = await client.query(`insert into conversations select * from conversations limit 1
      on conflict do nothing returning 1`);
    expect(dup.rowCount).toBe(0);
    const indexes = await client.query(`select indexname from pg_indexes
      where tablename in ('turns', 'conversations') order by indexname`);
    expect(indexes.rows.map((r) => r.indexname)).toEqual([
      "conversations_id_started_at_pk",
      "conversations_tenant_conversation_idx",
      "conversations_tenant_started_idx",
      "conversations_tenant_user_idx",
      "turns_conversation_idx",
      "turns_id_at_pk",
      "turns_tenant_at_idx",
      "turns_tenant_user_idx",
    ]);
  });
});
