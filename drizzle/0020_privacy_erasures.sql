CREATE TABLE "erasures" (
	"subject_hash" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"erased_at" timestamp with time zone DEFAULT now() NOT NULL
);
