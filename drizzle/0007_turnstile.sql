ALTER TABLE "tenants" ADD COLUMN "turnstile_site_key" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "turnstile_secret_key" text;