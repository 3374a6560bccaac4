CREATE TABLE "knowledge_daily" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"answers" bigint DEFAULT 0 NOT NULL,
	"grounded" bigint DEFAULT 0 NOT NULL,
	"unanswered" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "knowledge_daily_tenant_id_day_pk" PRIMARY KEY("tenant_id","day")
);
--> statement-breakpoint
CREATE TABLE "knowledge_source_daily" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"source_id" uuid NOT NULL,
	"citations" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "knowledge_source_daily_tenant_id_day_source_id_pk" PRIMARY KEY("tenant_id","day","source_id")
);
