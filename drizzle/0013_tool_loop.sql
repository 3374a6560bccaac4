ALTER TABLE "tenants" ADD COLUMN "tool_execution" text DEFAULT 'client' NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "max_tool_steps" integer DEFAULT 3 NOT NULL;