ALTER TABLE "tenant_hourly" ADD COLUMN "tool_calls" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_hourly" ADD COLUMN "tool_failures" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "tool_calls" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "tool_failures" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "turns" ADD COLUMN "tools" jsonb;