CREATE TABLE "queue_totals" (
	"queue" text PRIMARY KEY NOT NULL,
	"messages" bigint NOT NULL,
	"lag_sum_ms" double precision NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tenant_latency_totals" (
	"tenant_id" text NOT NULL,
	"le" double precision NOT NULL,
	"count" bigint NOT NULL,
	CONSTRAINT "tenant_latency_totals_tenant_id_le_pk" PRIMARY KEY("tenant_id","le")
);
--> statement-breakpoint
-- Backfill from the daily histograms (nothing prunes tenant_latency_daily): each stored bucket
-- counts under the least bound whose own bucket (latencyBucket(le * 1000)) is at or after it.
INSERT INTO "tenant_latency_totals" ("tenant_id", "le", "count")
SELECT d."tenant_id",
  coalesce((SELECT min(b.le) FROM (VALUES (0.05, 50), (0.1, 82), (0.25, 126), (0.5, 158), (1, 190), (2, 222),
    (3, 238), (5, 263), (8, 286), (10, 295), (15, 314), (20, 327), (30, 346), (60, 378), (120, 410))
    AS b(le, bucket) WHERE d."bucket" <= b.bucket), 'Infinity')::float8 AS "le",
  sum(d."count")
FROM "tenant_latency_daily" d GROUP BY 1, 2;
--> statement-breakpoint
-- Backfill: queue_lag keeps a week, so the queue counters start from what it still holds.
INSERT INTO "queue_totals" ("queue", "messages", "lag_sum_ms")
SELECT "queue", sum("messages"), sum("lag_sum_ms") FROM "queue_lag" GROUP BY "queue";
