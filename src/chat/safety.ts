/**
 * Blocked topics, checked on the visitor's input and on the model's output before it reaches the
 * visitor. A topic is a phrase; it matches case- and accent-insensitively on word boundaries, with
 * any run of spaces or punctuation between its words.
 */

export const DEFAULT_POLICY_MESSAGE =
  "Sorry, that is a topic I can't help with here. Is there anything else I can do for you?";

/** Lower-case, accents stripped, every run of non-letters/digits one space, padded by spaces. */
function normalize(text: string): string {
  return ` ${text
    .normalize("NFKD")
    .replace(/\p{M}+/gu, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, " ")
    .trim()} `;
}

/** A compiled list of topics; build it once per tenant config. */
export class TopicMatcher {
  readonly #topics: { topic: string; needle: string }[];
  /** The longest normalized needle: how much output must be held back to see a topic whole. */
  readonly holdBack: number;

  constructor(topics: readonly string[]) {
    this.#topics = topics
      .map((topic) => ({ topic, needle: normalize(topic) }))
      .filter((t) => t.needle.trim().length > 0);
    this.holdBack = this.#topics.reduce((n, t) => Math.max(n, t.needle.length), 0);
  }

  get empty(): boolean {
    return this.#topics.length === 0;
  }

  /** The first blocked topic the text touches, or undefined. */
  match(text: string): string | undefined {
    if (this.#topics.length === 0) return undefined;
    const hay = normalize(text);
    return this.#topics.find((t) => hay.includes(t.needle))?.topic;
  }
}

/**
 * Guards a stream of output deltas: text is released only once it can no longer be the start of a
 * blocked topic, so a topic split across chunks is caught before any of it is shown.
 */
export class OutputGuard {
  #pending = "";
  #released = "";
  #blocked: string | undefined;

  constructor(readonly matcher: TopicMatcher) {}

  get blocked(): string | undefined {
    return this.#blocked;
  }

  /** Adds a delta; answers the text now safe to show ("" while holding back or once blocked). */
  push(delta: string): string {
    if (this.#blocked) return "";
    if (this.matcher.empty) return delta;
    this.#pending += delta;
    // Check the released tail plus everything pending, so a topic spanning the boundary is seen.
    const tail = this.#released.slice(-2 * this.matcher.holdBack);
    const hit = this.matcher.match(tail + this.#pending);
    if (hit) {
      this.#blocked = hit;
      this.#pending = "";
      return "";
    }
    // Twice the needle: raw text can be longer than its normalized form (runs of spaces, punctuation).
    const keep = 2 * this.matcher.holdBack;
    if (this.#pending.length <= keep) return "";
    const out = this.#pending.slice(0, this.#pending.length - keep);
    this.#pending = this.#pending.slice(this.#pending.length - keep);
    this.#released += out;
    if (this.#released.length > 4 * keep) this.#released = this.#released.slice(-keep);
    return out;
  }

  /** Ends the stream: the held-back text if it is clean. */
  flush(): string {
    if (this.#blocked) return "";
    const out = this.#pending;
    this.#pending = "";
    return out;
  }
}

const HUMAN_REQUEST =
  /\b(talk|speak|chat|connect|transfer|put)\b[^.?!]{0,40}\b(human|person|someone|somebody|agent|representative|operator|staff|support team)\b|\b(real|live|actual)\s+(person|human|agent)\b|\bhuman\s+(agent|support|being)\b|^\s*(agent|human|representative|operator)[\s.!?]*$/i;

/** True when the visitor asks for a human. */
export function asksForHuman(text: string): boolean {
  return HUMAN_REQUEST.test(text);
}
