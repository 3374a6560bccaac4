import { joined } from "../http-body";
import type { ResponseTiming } from "../response-timing";

const encoder = new TextEncoder();

export const SSE_HEADERS = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
};

/** One SSE frame; `event` omitted means the default "message" event (what OpenAI clients read). */
export function sseFrame(data: string, event?: string): Uint8Array {
  return encoder.encode(event ? `event: ${event}\ndata: ${data}\n\n` : `data: ${data}\n\n`);
}

// Frames made while earlier ones are still being written wait, up to this many bytes, and leave
// together in one write; past it the generator waits for the client, as a plain pull would.
const COALESCE_BYTES = 64 * 1024;

/**
 * A response body fed by an async generator of frames. When the client goes away the stream is
 * cancelled: `onCancel` aborts the upstream call and the generator is closed, so its `finally`
 * (which settles usage) runs. Given the request's `timing`, the body marks the response's end
 * itself (its last frame read, a failure, or the client gone), so the app need not copy every
 * frame through a stream of its own to find out.
 *
 * The generator runs ahead of the client by at most COALESCE_BYTES: a frame made while the client
 * waits goes out at once, and frames made while the previous write is under way (an upstream read
 * that held many events) go out in one write instead of one each. The bytes are the same.
 */
export function frameStream(
  frames: AsyncGenerator<Uint8Array, void, undefined>,
  onCancel: () => void,
  timing?: ResponseTiming,
): ReadableStream<Uint8Array> {
  let queued: Uint8Array[] = [];
  let bytes = 0;
  let ended: { error?: unknown; failed: boolean } | undefined;
  let cancelled = false;
  // Whoever waits: the stream for a frame, or the generator for room.
  let wakeReader: (() => void) | undefined;
  let wakeWriter: (() => void) | undefined;
  const wake = (w: (() => void) | undefined) => w?.();
  let started = false;
  const run = async () => {
    try {
      for (;;) {
        while (bytes >= COALESCE_BYTES && !cancelled) await new Promise<void>((r) => (wakeWriter = r));
        if (cancelled) return;
        const next = await frames.next();
        if (next.done || cancelled) break;
        queued.push(next.value);
        bytes += next.value.byteLength;
        wake(wakeReader);
      }
      ended = { failed: false };
    } catch (error) {
      ended = { error, failed: true };
    }
    wake(wakeReader);
  };
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        // Never rejects: a failure is kept in `ended` and handed to the stream after its frames.
        void run();
      }
      while (queued.length === 0 && !ended && !cancelled) await new Promise<void>((r) => (wakeReader = r));
      if (cancelled) return;
      if (queued.length > 0) {
        controller.enqueue(queued.length === 1 ? (queued[0] as Uint8Array) : joined(queued, bytes));
        queued = [];
        bytes = 0;
        wake(wakeWriter);
        return;
      }
      timing?.end();
      if (ended?.failed) {
        console.error(JSON.stringify({ msg: "stream failed", error: String(ended.error) }));
        controller.error(ended.error);
      } else controller.close();
    },
    async cancel() {
      timing?.end();
      cancelled = true;
      wake(wakeWriter);
      wake(wakeReader);
      onCancel();
      await frames.return(undefined);
    },
  });
  return timing ? timing.timedBy(body) : body;
}
