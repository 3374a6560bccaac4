ALTER TABLE "tenant_daily" ADD COLUMN "disconnected" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_daily" ADD COLUMN "human" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "disconnected" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "human" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "refused_address" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "disconnected" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "human" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "refused_address" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "turns" ADD COLUMN "called_model" text;