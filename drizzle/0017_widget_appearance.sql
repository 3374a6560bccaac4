ALTER TABLE "tenants" ADD COLUMN "widget_title" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "widget_accent_color" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "widget_avatar_url" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "widget_position" text DEFAULT 'bottom-right' NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "widget_locale" text;