/** One dispatched server-sent event. `event` is "message" when the server named none. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | undefined;
}

const LF = 10;
const CR = 13;

/**
 * An incremental parser for text/event-stream, after the WHATWG algorithm: chunks may split
 * anywhere (even between CR and LF), lines end in LF, CRLF or CR, ":" lines are comments and
 * several data lines join with "\n". Each character is looked at once, so cost is linear in the input.
 */
export class SseParser {
  // Pieces of the current, not yet terminated line: joined once, when its terminator arrives.
  private pending: string[] = [];
  private data: string[] = [];
  private eventType = "";
  private lastId: string | undefined;
  private afterCr = false;
  private first = true;

  /** Feeds decoded text; complete events are pushed onto `out`. */
  feed(chunk: string, out: SseEvent[]): void {
    if (chunk.length === 0) return;
    let start = 0;
    if (this.first) {
      this.first = false;
      if (chunk.charCodeAt(0) === 0xfeff) start = 1;
    }
    if (this.afterCr) {
      this.afterCr = false;
      if (chunk.charCodeAt(start) === LF) start += 1;
    }
    for (let i = start; i < chunk.length; i++) {
      const c = chunk.charCodeAt(i);
      if (c !== LF && c !== CR) continue;
      const piece = chunk.slice(start, i);
      let line = piece;
      if (this.pending.length > 0) {
        this.pending.push(piece);
        line = this.pending.join("");
        this.pending = [];
      }
      this.line(line, out);
      if (c === CR) {
        if (i + 1 === chunk.length) this.afterCr = true;
        else if (chunk.charCodeAt(i + 1) === LF) i += 1;
      }
      start = i + 1;
    }
    if (start < chunk.length) this.pending.push(chunk.slice(start));
  }

  /**
   * Ends the stream. The spec drops an event not closed by a blank line; we keep one whose data
   * lines were complete, because some OpenAI-compatible servers end on "data: [DONE]\n" alone.
   * A line cut mid-way is still dropped.
   */
  end(out: SseEvent[]): void {
    this.pending = [];
    this.dispatch(out);
  }

  private line(line: string, out: SseEvent[]): void {
    if (line.length === 0) {
      this.dispatch(out);
      return;
    }
    const colon = line.indexOf(":");
    if (colon === 0) return;
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = "";
    if (colon > 0) value = line.slice(line.charCodeAt(colon + 1) === 32 ? colon + 2 : colon + 1);
    switch (field) {
      case "data":
        this.data.push(value);
        break;
      case "event":
        this.eventType = value;
        break;
      case "id":
        if (!value.includes("\0")) this.lastId = value;
        break;
      // "retry" only matters to EventSource reconnection, which a one-shot upstream call never does.
    }
  }

  private dispatch(out: SseEvent[]): void {
    if (this.data.length > 0) {
      out.push({ event: this.eventType || "message", data: this.data.join("\n"), id: this.lastId });
    }
    this.data = [];
    this.eventType = "";
  }
}

/**
 * Reads a byte stream as server-sent events, one network read at a time: `read()` answers the
 * events that read completed (possibly none), or undefined at the end. A provider loops over it in
 * its own generator, so an event costs no generator of its own on its way. `release()` (in a
 * `finally`) cancels the stream unless it was read to its end.
 */
export class SseReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private readonly parser = new SseParser();
  private finished = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  async read(): Promise<SseEvent[] | undefined> {
    if (this.finished) return undefined;
    const out: SseEvent[] = [];
    const { done, value } = await this.reader.read();
    if (done) {
      this.parser.feed(this.decoder.decode(), out);
      this.parser.end(out);
      this.finished = true;
      return out;
    }
    this.parser.feed(this.decoder.decode(value, { stream: true }), out);
    return out;
  }

  /** Early exit (consumer stopped, error): releases the upstream connection instead of draining it. */
  release(): void {
    if (!this.finished) {
      this.finished = true;
      this.reader.cancel().catch(() => {});
    }
  }
}

/** Reads a byte stream as server-sent events; leaving the loop early cancels the stream. */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent, void, undefined> {
  const sse = new SseReader(body);
  try {
    for (let events = await sse.read(); events; events = await sse.read()) yield* events;
  } finally {
    sse.release();
  }
}
