CREATE TABLE "tenant_human_reply_daily" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"bucket" smallint NOT NULL,
	"count" integer NOT NULL,
	CONSTRAINT "tenant_human_reply_daily_tenant_id_day_bucket_pk" PRIMARY KEY("tenant_id","day","bucket")
);
--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "human_handled" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "first_human_reply_ms" double precision;--> statement-breakpoint
ALTER TABLE "conversations" ADD COLUMN "resolved_by" text;--> statement-breakpoint
ALTER TABLE "knowledge_chunks" ADD COLUMN "embedding" real[];--> statement-breakpoint
ALTER TABLE "knowledge_chunks" ADD COLUMN "embedding_model" text;--> statement-breakpoint
ALTER TABLE "knowledge_settings" ADD COLUMN "embedding_provider" text DEFAULT 'none' NOT NULL;--> statement-breakpoint
ALTER TABLE "knowledge_settings" ADD COLUMN "embedding_model" text;--> statement-breakpoint
ALTER TABLE "knowledge_settings" ADD COLUMN "embedding_base_url" text;--> statement-breakpoint
ALTER TABLE "knowledge_settings" ADD COLUMN "embedding_api_key" text;--> statement-breakpoint
ALTER TABLE "knowledge_settings" ADD COLUMN "min_similarity" double precision DEFAULT 0.3 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_daily" ADD COLUMN "human_handled" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_daily" ADD COLUMN "resolved_by_human" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_daily" ADD COLUMN "human_replies" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_daily" ADD COLUMN "human_reply_ms" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "human_handled" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "resolved_by_human" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "human_replies" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "human_reply_ms" double precision DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "human_handled" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "resolved_by_human" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "human_replies" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "human_reply_ms" double precision DEFAULT 0 NOT NULL;