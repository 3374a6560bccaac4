ALTER TABLE "alert_settings" ADD COLUMN "webhook_secret" text;--> statement-breakpoint
-- Webhooks set before this migration were signed with the platform's secret; they get one of their
-- own (244 random bits from two v4 UUIDs), which the tenant learns by rotating it.
UPDATE "alert_settings" SET "webhook_secret" = 'whsec_' || replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', '') WHERE "webhook_url" IS NOT NULL;
