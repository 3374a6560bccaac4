/**
 * The knowledge shape a chat path's app (src/api-chat.ts) needs: a cited source. Apart from
 * schemas.ts, whose source and settings shapes a cold isolate would otherwise build on its first
 * chat request; test/local/bundle.test.ts holds the chat app to that.
 */
import { z } from "@hono/zod-openapi";

/** A source cited by an answer, as chat responses carry it. */
export const AnswerSource = z
  .object({ id: z.string(), title: z.string(), url: z.string().nullable() })
  .openapi("AnswerSource");
export type AnswerSource = z.infer<typeof AnswerSource>;
