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

/**
 * A response body fed by an async generator of frames. When the client goes away the stream is
 * cancelled: `onCancel` aborts the upstream call and the generator is closed, so its `finally`
 * (which settles usage) runs.
 */
export function frameStream(
  frames: AsyncGenerator<Uint8Array, void, undefined>,
  onCancel: () => void,
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const next = await frames.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      } catch (err) {
        console.error(JSON.stringify({ msg: "stream failed", error: String(err) }));
        controller.error(err);
      }
    },
    async cancel() {
      onCancel();
      await frames.return(undefined);
    },
  });
}
