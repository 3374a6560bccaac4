CREATE TABLE "conversations" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"user_id" text NOT NULL,
	"day" date NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone NOT NULL,
	"turn_count" integer NOT NULL,
	"resolved" boolean NOT NULL,
	"escalated" boolean NOT NULL,
	"csat" smallint,
	"summary_csat" smallint,
	"total_tokens" bigint NOT NULL,
	"total_cost_usd" double precision NOT NULL,
	"avg_response_ms" double precision NOT NULL,
	"tools_used" jsonb NOT NULL,
	"channel" text NOT NULL,
	"experiment" text,
	"variant" text,
	"error_count" integer NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "dead_letters" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"message_id" text NOT NULL,
	"queue" text NOT NULL,
	"reason" text NOT NULL,
	"error" text NOT NULL,
	"body" text NOT NULL,
	"tenant_id" text,
	"event_id" text,
	"attempts" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"replayed_at" timestamp with time zone,
	"replays" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "feedback" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"user_id" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"day" date NOT NULL,
	"csat" smallint NOT NULL,
	"comment" text,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "safety_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"user_id" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"day" date NOT NULL,
	"direction" text NOT NULL,
	"topic" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tenant_daily" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"turns" integer DEFAULT 0 NOT NULL,
	"answered" integer DEFAULT 0 NOT NULL,
	"errors" integer DEFAULT 0 NOT NULL,
	"blocked" integer DEFAULT 0 NOT NULL,
	"refused" integer DEFAULT 0 NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cost_usd" double precision DEFAULT 0 NOT NULL,
	"latency_sum_ms" double precision DEFAULT 0 NOT NULL,
	"active_users" integer DEFAULT 0 NOT NULL,
	"conversations" integer DEFAULT 0 NOT NULL,
	"conversation_turns" bigint DEFAULT 0 NOT NULL,
	"resolved" integer DEFAULT 0 NOT NULL,
	"escalated" integer DEFAULT 0 NOT NULL,
	"csat_sum" integer DEFAULT 0 NOT NULL,
	"csat_count" integer DEFAULT 0 NOT NULL,
	"conversation_tokens" bigint DEFAULT 0 NOT NULL,
	"conversation_cost_usd" double precision DEFAULT 0 NOT NULL,
	"safety_events" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenant_daily_tenant_id_day_pk" PRIMARY KEY("tenant_id","day")
);
--> statement-breakpoint
CREATE TABLE "tenant_daily_users" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"user_id" text NOT NULL,
	CONSTRAINT "tenant_daily_users_tenant_id_day_user_id_pk" PRIMARY KEY("tenant_id","day","user_id")
);
--> statement-breakpoint
CREATE TABLE "tenant_latency_daily" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"bucket" smallint NOT NULL,
	"count" integer NOT NULL,
	CONSTRAINT "tenant_latency_daily_tenant_id_day_bucket_pk" PRIMARY KEY("tenant_id","day","bucket")
);
--> statement-breakpoint
CREATE TABLE "turns" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"user_id" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"day" date NOT NULL,
	"turn_index" integer NOT NULL,
	"model" text NOT NULL,
	"experiment" text,
	"variant" text,
	"input_tokens" bigint NOT NULL,
	"output_tokens" bigint NOT NULL,
	"cost_usd" double precision NOT NULL,
	"latency_ms" double precision NOT NULL,
	"first_token_ms" double precision,
	"outcome" text NOT NULL,
	"error" text,
	"tools_used" jsonb NOT NULL,
	"channel" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "conversations_tenant_conversation_idx" ON "conversations" USING btree ("tenant_id","conversation_id");--> statement-breakpoint
CREATE INDEX "conversations_tenant_started_idx" ON "conversations" USING btree ("tenant_id","started_at");--> statement-breakpoint
CREATE UNIQUE INDEX "dead_letters_message_idx" ON "dead_letters" USING btree ("message_id");--> statement-breakpoint
CREATE INDEX "dead_letters_pending_idx" ON "dead_letters" USING btree ("id") WHERE "dead_letters"."replayed_at" is null;--> statement-breakpoint
CREATE INDEX "feedback_conversation_idx" ON "feedback" USING btree ("tenant_id","conversation_id","at");--> statement-breakpoint
CREATE INDEX "safety_events_tenant_at_idx" ON "safety_events" USING btree ("tenant_id","at");--> statement-breakpoint
CREATE INDEX "turns_tenant_at_idx" ON "turns" USING btree ("tenant_id","at");--> statement-breakpoint
CREATE INDEX "turns_conversation_idx" ON "turns" USING btree ("tenant_id","conversation_id");