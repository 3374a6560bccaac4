CREATE TABLE "tool_daily" (
	"tenant_id" text NOT NULL,
	"day" date NOT NULL,
	"tool" text NOT NULL,
	"calls" bigint DEFAULT 0 NOT NULL,
	"failures" bigint DEFAULT 0 NOT NULL,
	"latency_sum_ms" double precision DEFAULT 0 NOT NULL,
	CONSTRAINT "tool_daily_tenant_id_day_tool_pk" PRIMARY KEY("tenant_id","day","tool")
);
