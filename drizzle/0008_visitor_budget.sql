ALTER TABLE "tenant_hourly" ADD COLUMN "refused_visitor_tokens" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenant_totals" ADD COLUMN "refused_visitor_tokens" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "visitor_monthly_token_share" double precision DEFAULT 0.05 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "address_messages_per_minute" integer DEFAULT 30 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "address_conversations_per_hour" integer DEFAULT 20 NOT NULL;