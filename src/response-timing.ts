/**
 * A request's response time as the visitor waits for it: from the request's arrival at the worker
 * (the first thing `fetch` does) to the last byte of its response handed to the runtime. Workers
 * clocks advance only on I/O, so "arrival" is the time of the request event and "last byte" the
 * time of the last I/O before the response ended: what the visitor waits for, short of the network.
 */

// Arrival times by request object, set by the entry before anything else runs (src/index.ts). A
// WeakMap: nothing a client sends (a header) can claim an arrival time, and entries go with their request.
const arrivals = new WeakMap<Request, number>();

/** Notes the request's arrival; the entry calls it first, before the app is even loaded. */
export function markArrival(request: Request, at = Date.now()): void {
  arrivals.set(request, at);
}

/** One response's timing: its arrival, and a promise of when its last byte left. */
export class ResponseTiming {
  readonly arrivedAt: number;
  /** Resolves with the time the response's last byte was handed over, or the client went away. */
  readonly sent: Promise<number>;
  #resolve: (at: number) => void = () => {};
  #done = false;
  #selfTimed: ReadableStream | undefined;

  constructor(arrivedAt: number) {
    this.arrivedAt = arrivedAt;
    this.sent = new Promise<number>((r) => {
      this.#resolve = r;
    });
  }

  /** The request's timing: from its noted arrival, else from now (outside the entry, e.g. a bare router). */
  static of(request: Request): ResponseTiming {
    return new ResponseTiming(arrivals.get(request) ?? Date.now());
  }

  /** Marks the end of the response (once; later calls change nothing). */
  end(at = Date.now()): void {
    if (this.#done) return;
    this.#done = true;
    this.#resolve(at);
  }

  /**
   * Marks `body` as one that calls `end()` itself when its last byte is read or the client goes
   * away (src/chat/sse.ts): `watch` then hands its response over as it is, without a reader of
   * its own copying every chunk from one stream into another.
   */
  timedBy<S extends ReadableStream>(body: S): S {
    this.#selfTimed = body;
    return body;
  }

  /**
   * The response, its end marked when its last byte is read by the runtime or the client goes
   * away. A body given whole (JSON, an error) is handed over at once: its end is now. A streamed
   * body (SSE) is passed through a reader of its own that notes when it finished, unless it
   * notes that itself (`timedBy`).
   */
  watch(res: Response): Response {
    const streamed = res.headers.get("content-type")?.startsWith("text/event-stream") ?? false;
    if (streamed && res.body !== null && res.body === this.#selfTimed) return res;
    if (!streamed || !res.body) {
      this.end();
      return res;
    }
    const reader = res.body.getReader();
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const next = await reader.read();
          if (next.done) {
            this.end();
            controller.close();
          } else controller.enqueue(next.value);
        } catch (err) {
          this.end();
          controller.error(err);
        }
      },
      cancel: async (reason) => {
        this.end();
        await reader.cancel(reason);
      },
    });
    return new Response(body, res);
  }
}
