CREATE TABLE "tenant_first_token_daily" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"bucket" smallint NOT NULL,
	"count" integer NOT NULL,
	CONSTRAINT "tenant_first_token_daily_tenant_id_day_bucket_pk" PRIMARY KEY("tenant_id","day","bucket")
);
--> statement-breakpoint
CREATE TABLE "tenant_first_token_totals" (
	"tenant_id" text NOT NULL,
	"le" double precision NOT NULL,
	"count" bigint NOT NULL,
	"sum_ms" double precision NOT NULL,
	CONSTRAINT "tenant_first_token_totals_tenant_id_le_pk" PRIMARY KEY("tenant_id","le")
);
