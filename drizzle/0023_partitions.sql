-- Hand-written (issue 19, item 5): turns by month of "at", conversations by month of "started_at"
-- (src/privacy/partitions.ts creates the months ahead and drops the ones past the platform maximum).
-- Each table is rebuilt: a partitioned copy with one partition per month that holds rows, the next
-- three months and a default one (no insert ever fails), the rows moved, the names swapped, the keys
-- and indexes recreated. Writers wait for the lock (the analytics consumer retries) instead of
-- writing into the table being copied. The keys include the partition column, as Postgres requires.
LOCK TABLE "turns", "conversations" IN EXCLUSIVE MODE;--> statement-breakpoint
CREATE TABLE "turns_partitioned" (LIKE "turns" INCLUDING DEFAULTS) PARTITION BY RANGE ("at");--> statement-breakpoint
CREATE TABLE "conversations_partitioned" (LIKE "conversations" INCLUDING DEFAULTS) PARTITION BY RANGE ("started_at");--> statement-breakpoint
DO $$
DECLARE
  t record;
  m timestamptz;
  next_m timestamptz;
BEGIN
  FOR t IN SELECT * FROM (VALUES ('turns', 'at'), ('conversations', 'started_at')) AS v(name, col) LOOP
    EXECUTE format('SELECT min(%I) FROM %I', t.col, t.name) INTO m;
    m := date_trunc('month', least(coalesce(m, now()), now()), 'UTC');
    WHILE m <= date_trunc('month', now(), 'UTC') + interval '3 months' LOOP
      next_m := (m AT TIME ZONE 'UTC' + interval '1 month') AT TIME ZONE 'UTC';
      EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
        t.name || '_p' || to_char(m AT TIME ZONE 'UTC', 'YYYYMM'), t.name || '_partitioned', m, next_m);
      m := next_m;
    END LOOP;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t.name || '_default', t.name || '_partitioned');
  END LOOP;
END $$;--> statement-breakpoint
INSERT INTO "turns_partitioned" SELECT * FROM "turns";--> statement-breakpoint
INSERT INTO "conversations_partitioned" SELECT * FROM "conversations";--> statement-breakpoint
DROP TABLE "turns";--> statement-breakpoint
DROP TABLE "conversations";--> statement-breakpoint
ALTER TABLE "turns_partitioned" RENAME TO "turns";--> statement-breakpoint
ALTER TABLE "conversations_partitioned" RENAME TO "conversations";--> statement-breakpoint
ALTER TABLE "turns" ADD CONSTRAINT "turns_id_at_pk" PRIMARY KEY("id","at");--> statement-breakpoint
ALTER TABLE "conversations" ADD CONSTRAINT "conversations_id_started_at_pk" PRIMARY KEY("id","started_at");--> statement-breakpoint
CREATE INDEX "turns_tenant_at_idx" ON "turns" USING btree ("tenant_id","at");--> statement-breakpoint
CREATE INDEX "turns_conversation_idx" ON "turns" USING btree ("tenant_id","conversation_id");--> statement-breakpoint
CREATE INDEX "turns_tenant_user_idx" ON "turns" USING btree ("tenant_id","user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "conversations_tenant_conversation_idx" ON "conversations" USING btree ("tenant_id","conversation_id","started_at");--> statement-breakpoint
CREATE INDEX "conversations_tenant_started_idx" ON "conversations" USING btree ("tenant_id","started_at");--> statement-breakpoint
CREATE INDEX "conversations_tenant_user_idx" ON "conversations" USING btree ("tenant_id","user_id");
