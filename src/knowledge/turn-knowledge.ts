/**
 * What a turn event records of the tenant's knowledge (src/analytics/events.ts TurnKnowledge):
 * the analytics of grounded and unanswered answers and of the sources most used come from it.
 */
import type { TurnEvent, TurnKnowledge } from "../analytics/events";
import { citedSources, type Grounding, saysUnknown } from "./retrieve";

/** The knowledge of an answered turn; undefined when retrieval did not run or the model did not answer. */
export function turnKnowledge(
  outcome: TurnEvent["outcome"],
  answer: string,
  grounding: Grounding | undefined,
): TurnKnowledge | undefined {
  if (outcome !== "ok" || !grounding || grounding.kind === "off") return undefined;
  return {
    sources: citedSources(answer, grounding)
      .slice(0, 32)
      .map((s) => s.id),
    unanswered: saysUnknown(answer, grounding),
  };
}
