import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSse, type SseEvent } from "../../../src/chat/providers/sse";
import { drain } from "./helpers";

const enc = new TextEncoder();

/** A byte stream delivering `bytes` in pieces cut at the given offsets. */
function streamOf(bytes: Uint8Array, cuts: number[] = []): ReadableStream<Uint8Array> {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const chunks: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points, bytes.length]) {
    if (p > prev) chunks.push(bytes.slice(prev, p));
    prev = p;
  }
  return new ReadableStream({
    pull(controller) {
      const next = chunks.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

const parse = async (text: string, cuts: number[] = []) =>
  (await drain(parseSse(streamOf(enc.encode(text), cuts)))).events;

describe("parseSse", () => {
  it("parses named events, multi-line data, ids and comments", async () => {
    const text = ": hello\nevent: a\ndata: one\ndata:two\nid: 7\n\ndata:  spaced\n\n";
    expect(await parse(text)).toEqual([
      { event: "a", data: "one\ntwo", id: "7" },
      { event: "message", data: " spaced", id: "7" },
    ]);
  });

  it("joins a CRLF split between two chunks, and accepts bare CR line ends", async () => {
    // Read as two line ends, the split CRLF would end the event after "a".
    const text = "data: a\r\ndata: b\r\n\r\ndata: c\r\rdata: d\n\n";
    const cut = text.indexOf("\r") + 1;
    expect(await parse(text, [cut])).toEqual([
      { event: "message", data: "a\nb", id: undefined },
      { event: "message", data: "c", id: undefined },
      { event: "message", data: "d", id: undefined },
    ]);
  });

  it("drops events with no data, a leading BOM, and a line cut off at the end", async () => {
    const text = "\uFEFFevent: empty\n\ndata\n\ndata: kept\n\ndata: cut-off";
    expect(await parse(text)).toEqual([
      { event: "message", data: "", id: undefined },
      { event: "message", data: "kept", id: undefined },
    ]);
  });

  it("keeps a final event whose data line ended but no blank line followed", async () => {
    expect(await parse("data: [DONE]\n")).toEqual([{ event: "message", data: "[DONE]", id: undefined }]);
  });

  it("decodes multi-byte characters split across chunks", async () => {
    const text = "data: héllo 🎉 你好\n\n";
    const bytes = enc.encode(text);
    const cuts = Array.from({ length: bytes.length }, (_, i) => i);
    expect(await drain(parseSse(streamOf(bytes, cuts)))).toEqual({
      events: [{ event: "message", data: "héllo 🎉 你好", id: undefined }],
    });
  });

  it("cancels the upstream stream when the consumer stops early", async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode("data: 1\n\ndata: 2\n\n"));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const ev of parseSse(body)) {
      expect(ev.data).toBe("1");
      break;
    }
    expect(cancelled).toBe(true);
  });

  it("parses any event list the same however the bytes are split and lines end (property)", async () => {
    const line = fc.string({ unit: "binary", maxLength: 12 }).filter((s) => !/[\r\n]/.test(s));
    const event = fc.record({
      name: fc.option(fc.stringMatching(/^[a-z_]{1,10}$/), { nil: undefined }),
      data: fc.array(line, { minLength: 1, maxLength: 3 }),
      id: fc.option(fc.stringMatching(/^[a-z0-9]{1,6}$/), { nil: undefined }),
      comment: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(event, { maxLength: 6 }),
        fc.constantFrom("\n", "\r\n", "\r"),
        fc.array(fc.nat(), { maxLength: 12 }),
        async (events, eol, cuts) => {
          let text = "";
          const expected: SseEvent[] = [];
          let lastId: string | undefined;
          for (const e of events) {
            if (e.comment) text += `: keep-alive${eol}`;
            if (e.name) text += `event: ${e.name}${eol}`;
            if (e.id) text += `id: ${e.id}${eol}`;
            for (const d of e.data) text += `data: ${d}${eol}`;
            text += eol;
            lastId = e.id ?? lastId;
            expected.push({ event: e.name ?? "message", data: e.data.join("\n"), id: lastId });
          }
          expect(await parse(text, cuts)).toEqual(expected);
        },
      ),
      { numRuns: 300 },
    );
  });
});
