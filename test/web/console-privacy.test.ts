import { describe, expect, it } from "vitest";
import type { SubjectExport } from "../../src/api-types";
import { Erase, SubjectRequest } from "../../src/privacy/routes";
import { erasureBody, exportSummary, subjectBody } from "../../web/console/views/privacy";

describe("the console's privacy requests", () => {
  it("sends an export body the API accepts", () => {
    expect(subjectBody("visitor_id", " v-123 ")).toEqual({ visitor_id: "v-123" });
    expect(SubjectRequest.safeParse(subjectBody("user_id", "ann")).success).toBe(true);
  });

  it("sends an erasure only when the id is typed again exactly", () => {
    const ok = erasureBody("visitor_id", "v-123", " v-123");
    expect(ok).toEqual({ body: { visitor_id: "v-123", confirm: "v-123" } });
    if ("body" in ok) expect(Erase.safeParse(ok.body).success).toBe(true);
    expect(erasureBody("visitor_id", "v-123", "v-12")).toEqual({
      problem: "Type v-123 exactly to confirm the erasure.",
    });
    expect(erasureBody("user_id", "  ", "  ")).toEqual({ problem: "Enter the id of the person to erase." });
    expect(erasureBody("user_id", "ann", "")).toHaveProperty("problem");
  });

  it("summarizes an export", () => {
    const x: SubjectExport = {
      subject: "visitor:v-1",
      conversations: [
        { conversation_id: "c1", state: "ended", messages: [{ role: "user", content: "hi", at: 1 }] },
      ],
      turns: [{}],
      conversation_summaries: [],
      feedback: [],
      safety_events: [],
      active_days: [],
      inbox_conversations: [],
      inbox_entries: [],
      experiment_assignments: [],
      truncated: true,
    };
    expect(exportSummary(x)).toBe(
      "visitor:v-1: 1 conversation(s), 1 message(s), 1 turn(s), 0 feedback, 0 experiment assignment(s) (truncated: more exist).",
    );
  });
});
