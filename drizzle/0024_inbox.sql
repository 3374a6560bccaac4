CREATE TABLE "inbox_conversations" (
	"tenant_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"user_id" text NOT NULL,
	"status" text NOT NULL,
	"channel" text NOT NULL,
	"experiment" text,
	"variant" text,
	"csat" smallint,
	"total_cost_usd" double precision NOT NULL,
	"total_tokens" bigint NOT NULL,
	"turn_count" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"last_activity_at" timestamp with time zone NOT NULL,
	"waiting_since" timestamp with time zone,
	"holder_operator_id" text,
	"holder_name" text,
	"version" integer NOT NULL,
	"event_at" timestamp with time zone NOT NULL,
	CONSTRAINT "inbox_conversations_tenant_id_conversation_id_pk" PRIMARY KEY("tenant_id","conversation_id")
);--> statement-breakpoint
CREATE TABLE "inbox_entries" (
	"tenant_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"seq" integer NOT NULL,
	"user_id" text NOT NULL,
	"role" text NOT NULL,
	"author" text,
	"content" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"tsv" "tsvector" GENERATED ALWAYS AS (to_tsvector('english', content)) STORED NOT NULL,
	CONSTRAINT "inbox_entries_tenant_id_conversation_id_seq_pk" PRIMARY KEY("tenant_id","conversation_id","seq")
);--> statement-breakpoint
CREATE INDEX "inbox_conversations_activity_idx" ON "inbox_conversations" USING btree ("tenant_id","last_activity_at","conversation_id");--> statement-breakpoint
CREATE INDEX "inbox_conversations_waiting_idx" ON "inbox_conversations" USING btree ("tenant_id","waiting_since") WHERE "inbox_conversations"."status" = 'waiting';--> statement-breakpoint
CREATE INDEX "inbox_conversations_user_idx" ON "inbox_conversations" USING btree ("tenant_id","user_id");--> statement-breakpoint
CREATE INDEX "inbox_entries_tsv_idx" ON "inbox_entries" USING gin ("tsv");--> statement-breakpoint
CREATE INDEX "inbox_entries_tenant_at_idx" ON "inbox_entries" USING btree ("tenant_id","at");--> statement-breakpoint
CREATE INDEX "inbox_entries_user_idx" ON "inbox_entries" USING btree ("tenant_id","user_id");
