ALTER TABLE "tenants" ADD COLUMN "retention_days" integer;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "redact_patterns" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "redact_before_model" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "conversations_tenant_user_idx" ON "conversations" USING btree ("tenant_id","user_id");--> statement-breakpoint
CREATE INDEX "dead_letters_tenant_created_idx" ON "dead_letters" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE INDEX "feedback_tenant_at_idx" ON "feedback" USING btree ("tenant_id","at");--> statement-breakpoint
CREATE INDEX "turns_tenant_user_idx" ON "turns" USING btree ("tenant_id","user_id");