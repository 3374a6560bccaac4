/**
 * The shape of a reference in the prompt's knowledge block, `<reference id="S1" title="...">text
 * </reference>`, read back by the mock model so the demo and tests answer from retrieved text.
 */

/** The first reference of a system prompt: its id and text; undefined when there is none. */
export function firstReference(system: string | undefined): { id: string; text: string } | undefined {
  const m = /<reference id="(S\d+)"[^>]*>\n([\s\S]*?)\n<\/reference>/.exec(system ?? "");
  return m ? { id: m[1] ?? "", text: m[2] ?? "" } : undefined;
}

// The instruction line the tenant's "I don't know" sentence follows, quoted on the next line; the
// mock and fake models find the sentence by it, so the demo and tests answer as a model should.
const UNKNOWN_LEAD = "reply exactly with this sentence and nothing else, instead of guessing:";

/** Collapses whitespace runs to one space, so a sentence matches however an answer wraps it. */
export function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * The prompt lines that ask the model for the tenant's exact "I don't know" sentence when neither
 * the references nor a tool provides what the visitor asks about the business.
 */
export function unknownAnswerInstruction(sentence: string): string {
  return [
    `If the visitor asks for information about the business that neither the knowledge base references nor one of your tools provides, ${UNKNOWN_LEAD}`,
    `"${collapseWhitespace(sentence)}"`,
    "Answer greetings and small talk normally.",
  ].join("\n");
}

/** The tenant's "I don't know" sentence a system prompt asks for; undefined when it asks for none. */
export function unknownAnswerOf(system: string | undefined): string | undefined {
  const at = system?.indexOf(UNKNOWN_LEAD) ?? -1;
  if (!system || at < 0) return undefined;
  return /^\n"(.*)"(?:\n|$)/.exec(system.slice(at + UNKNOWN_LEAD.length))?.[1];
}
