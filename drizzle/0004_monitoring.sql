CREATE TABLE "alert_settings" (
	"tenant_id" text PRIMARY KEY NOT NULL,
	"rules" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"webhook_url" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "alerts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"rule" text NOT NULL,
	"state" text NOT NULL,
	"value" double precision NOT NULL,
	"first_value" double precision NOT NULL,
	"threshold" double precision NOT NULL,
	"window_hours" integer NOT NULL,
	"events" integer NOT NULL,
	"fired_at" timestamp with time zone NOT NULL,
	"resolved_at" timestamp with time zone,
	"evaluated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "queue_lag" (
	"queue" text NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"messages" integer NOT NULL,
	"lag_sum_ms" double precision NOT NULL,
	"lag_max_ms" double precision NOT NULL,
	CONSTRAINT "queue_lag_queue_minute_pk" PRIMARY KEY("queue","minute")
);
--> statement-breakpoint
CREATE TABLE "refusals" (
	"id" uuid PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"reason" text NOT NULL,
	"count" integer NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tenant_hourly" (
	"tenant_id" text NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"turns" bigint DEFAULT 0 NOT NULL,
	"answered" bigint DEFAULT 0 NOT NULL,
	"errors" bigint DEFAULT 0 NOT NULL,
	"blocked" bigint DEFAULT 0 NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cost_usd" double precision DEFAULT 0 NOT NULL,
	"latency_sum_ms" double precision DEFAULT 0 NOT NULL,
	"conversations" bigint DEFAULT 0 NOT NULL,
	"resolved" bigint DEFAULT 0 NOT NULL,
	"escalated" bigint DEFAULT 0 NOT NULL,
	"csat_sum" bigint DEFAULT 0 NOT NULL,
	"csat_count" bigint DEFAULT 0 NOT NULL,
	"conversation_cost_usd" double precision DEFAULT 0 NOT NULL,
	"safety_events" bigint DEFAULT 0 NOT NULL,
	"refused_user" bigint DEFAULT 0 NOT NULL,
	"refused_tenant" bigint DEFAULT 0 NOT NULL,
	"refused_global" bigint DEFAULT 0 NOT NULL,
	"refused_monthly_tokens" bigint DEFAULT 0 NOT NULL,
	"refused_daily_cost" bigint DEFAULT 0 NOT NULL,
	"refused_conversation_cost" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "tenant_hourly_tenant_id_hour_pk" PRIMARY KEY("tenant_id","hour")
);
--> statement-breakpoint
CREATE TABLE "tenant_latency_hourly" (
	"tenant_id" text NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"bucket" smallint NOT NULL,
	"count" integer NOT NULL,
	CONSTRAINT "tenant_latency_hourly_tenant_id_hour_bucket_pk" PRIMARY KEY("tenant_id","hour","bucket")
);
--> statement-breakpoint
CREATE TABLE "tenant_totals" (
	"tenant_id" text PRIMARY KEY NOT NULL,
	"turns" bigint DEFAULT 0 NOT NULL,
	"answered" bigint DEFAULT 0 NOT NULL,
	"errors" bigint DEFAULT 0 NOT NULL,
	"blocked" bigint DEFAULT 0 NOT NULL,
	"input_tokens" bigint DEFAULT 0 NOT NULL,
	"output_tokens" bigint DEFAULT 0 NOT NULL,
	"cost_usd" double precision DEFAULT 0 NOT NULL,
	"latency_sum_ms" double precision DEFAULT 0 NOT NULL,
	"conversations" bigint DEFAULT 0 NOT NULL,
	"resolved" bigint DEFAULT 0 NOT NULL,
	"escalated" bigint DEFAULT 0 NOT NULL,
	"csat_sum" bigint DEFAULT 0 NOT NULL,
	"csat_count" bigint DEFAULT 0 NOT NULL,
	"conversation_cost_usd" double precision DEFAULT 0 NOT NULL,
	"safety_events" bigint DEFAULT 0 NOT NULL,
	"refused_user" bigint DEFAULT 0 NOT NULL,
	"refused_tenant" bigint DEFAULT 0 NOT NULL,
	"refused_global" bigint DEFAULT 0 NOT NULL,
	"refused_monthly_tokens" bigint DEFAULT 0 NOT NULL,
	"refused_daily_cost" bigint DEFAULT 0 NOT NULL,
	"refused_conversation_cost" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "alert_settings" ADD CONSTRAINT "alert_settings_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "alerts_firing_idx" ON "alerts" USING btree ("tenant_id","rule") WHERE "alerts"."state" = 'firing';--> statement-breakpoint
CREATE INDEX "alerts_tenant_fired_idx" ON "alerts" USING btree ("tenant_id","fired_at");--> statement-breakpoint
CREATE INDEX "refusals_tenant_at_idx" ON "refusals" USING btree ("tenant_id","at");