/** Redaction of the free text analytics events carry, applied by the consumer before any row is written. */
import type { AnalyticsEvent } from "../analytics/events.ts";
import { redact, redactNullable } from "./redact.ts";

/**
 * The event with its text fields redacted (built-in kinds: the consumer does not hold tenants'
 * patterns, which producers apply). The last line of defence: a producer that forgot still stores no PII.
 */
export function redactEvent(e: AnalyticsEvent): AnalyticsEvent {
  switch (e.type) {
    case "turn":
      return e.error === null ? e : { ...e, error: redact(e.error) };
    case "feedback":
      return e.comment === null ? e : { ...e, comment: redactNullable(e.comment) };
    case "safety":
      return { ...e, topic: redact(e.topic) };
    case "inbox":
      return { ...e, entries: e.entries.map((x) => ({ ...x, content: redact(x.content) })) };
    default:
      return e;
  }
}
