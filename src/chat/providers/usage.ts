import { countTextTokens, estimateRequestTokens } from "../tokens";
import type { ChatRequest, FinishReason, StreamEvent, Usage } from "./types";

/**
 * Remembers the output of one call so usage can be estimated when the upstream reports none
 * (or the stream broke). Keeps pieces and joins them once, only if an estimate is needed.
 */
export class OutputTally {
  private pieces: string[] = [];
  started = false;

  /** Notes an output event; returns it so providers can `yield tally.see(ev)`. */
  see<E extends StreamEvent>(ev: E): E {
    if (ev.type === "text") {
      this.pieces.push(ev.delta);
      this.started = true;
    } else if (ev.type === "tool_call") {
      if (ev.name) this.pieces.push(ev.name);
      this.pieces.push(ev.argumentsDelta);
      this.started = true;
    }
    return ev;
  }

  /** Usage by the token estimate (errs high): the request's input and the output seen so far. */
  estimate(req: Pick<ChatRequest, "system" | "messages" | "tools" | "inputTokens">): Usage {
    return {
      inputTokens: req.inputTokens ?? estimateRequestTokens(req),
      outputTokens: countTextTokens(this.pieces.join("")),
      estimated: true,
    };
  }
}

/** The closing pair every provider ends with: usage, then done. */
export function closing(usage: Usage, finishReason: FinishReason): StreamEvent[] {
  return [
    { type: "usage", ...usage },
    { type: "done", finishReason },
  ];
}

/** Maps the finish reasons of OpenAI-style APIs onto ours. */
export function openAiFinish(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case "length":
      return "length";
    case "tool_calls":
    case "function_call":
      return "tool_calls";
    case "content_filter":
      return "content_filter";
    default:
      return "stop";
  }
}
