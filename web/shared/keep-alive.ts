/**
 * The live protocol's keep-alive (docs/handoff.md): an idle socket can be cut by a proxy, a NAT or
 * a carrier on the way, and every reconnect costs a ticket, a wake of the conversation's object and
 * a resume. A ping sent exactly as PING_FRAME is answered by the runtime without waking the object.
 */
export const PING_FRAME = '{"type":"ping"}';
/** Well under the 100 s of silence after which some proxies close a WebSocket. */
export const KEEP_ALIVE_MS = 30_000;

/** Pings `ws` every `ms` while it is open; closing it, from either side, ends the pinging. */
export function keepAlive(ws: WebSocket, ms = KEEP_ALIVE_MS): void {
  const timer = setInterval(() => {
    if (ws.readyState === 1) ws.send(PING_FRAME);
  }, ms);
  ws.addEventListener("close", () => clearInterval(timer));
}
