/**
 * How often a live socket's client may write (docs/handoff.md, "Limits"). The sockets only
 * listen, but every frame that reaches the object wakes it, and a resume replays the transcript
 * after the client's seq: one 30-byte frame asks for the whole conversation again, and a script
 * holding a ticket could send thousands a second. Each socket holds FRAME_CREDIT credits, refilled
 * at that many a minute; a frame costs 1 and a resume RESUME_COST, so a socket replays the
 * transcript at most three times at once and three times a minute after. A socket out of credit
 * is closed (1008); its client reconnects with a new ticket, which the address windows limit.
 * Pings spelled exactly as the widget sends them are answered by the runtime and cost nothing.
 */
export const FRAME_CREDIT = 30;
export const FRAME_REFILL_MS = 60_000;
export const RESUME_COST = 10;

/** A socket's credit, kept in its attachment so that it survives hibernation. */
export interface FrameCredit {
  credit?: number;
  creditAt?: number;
}

/**
 * Spends `cost` of the socket's credit at `now`; false when it has too little, and then the rest is
 * forfeit, so frames already under way when the socket is closed find none either.
 */
export function spendFrame(c: FrameCredit, now: number, cost: number): boolean {
  const since = Math.max(0, now - (c.creditAt ?? now));
  const credit = Math.min(
    FRAME_CREDIT,
    (c.credit ?? FRAME_CREDIT) + (since * FRAME_CREDIT) / FRAME_REFILL_MS,
  );
  c.creditAt = now;
  c.credit = credit >= cost ? credit - cost : 0;
  return credit >= cost;
}
