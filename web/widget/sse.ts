/** One server-sent event. */
export interface SseEvent {
  event: string;
  data: string;
}

/** The events of a text/event-stream body as they arrive; a broken connection rejects the read. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      buf += decoder.decode(value, { stream: !done }).replace(/\r\n?/g, "\n");
      let end = buf.indexOf("\n\n");
      while (end >= 0) {
        const frame = parseFrame(buf.slice(0, end));
        buf = buf.slice(end + 2);
        if (frame) yield frame;
        end = buf.indexOf("\n\n");
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}

/** A frame's `event:` and `data:` lines (data lines joined by newlines); comments are skipped. */
export function parseFrame(block: string): SseEvent | undefined {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    const colon = line.indexOf(":");
    if (colon === 0) continue;
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  return data.length > 0 ? { event, data: data.join("\n") } : undefined;
}
