CREATE TABLE "operator_sockets" (
	"session_id" text NOT NULL,
	"tenant_id" text NOT NULL,
	"conversation_id" text NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "operator_sockets_session_id_conversation_id_pk" PRIMARY KEY("session_id","conversation_id")
);
--> statement-breakpoint
ALTER TABLE "operator_sockets" ADD CONSTRAINT "operator_sockets_session_id_operator_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."operator_sessions"("id") ON DELETE no action ON UPDATE no action;