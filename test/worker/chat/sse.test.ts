import { describe, expect, it } from "vitest";
import { frameStream, sseFrame } from "../../../src/chat/sse";
import { ResponseTiming } from "../../../src/response-timing";

const dec = new TextDecoder();

/** Reads a body whole, chunk by chunk, taking a macrotask over each chunk as a socket write would. */
async function chunksOf(body: ReadableStream<Uint8Array>): Promise<string[]> {
  const out: string[] = [];
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return out;
    out.push(dec.decode(value));
    await new Promise((r) => setTimeout(r, 0));
  }
}

describe("frameStream", () => {
  it("sends frames made while a write is under way together, byte for byte as made", async () => {
    const made = Array.from({ length: 50 }, (_, i) => `{"n":${i}}`);
    const frames = (async function* () {
      for (const m of made) yield sseFrame(m);
    })();
    const chunks = await chunksOf(frameStream(frames, () => {}));
    expect(chunks.join("")).toBe(made.map((m) => `data: ${m}\n\n`).join(""));
    // The first frame leaves at once; the rest were ready before the reader came back.
    expect(chunks.length).toBeLessThan(made.length);
    expect(chunks[0]).toBe(`data: ${made[0]}\n\n`);
  });

  it("sends a frame at once when the reader is already waiting for it", async () => {
    let release: () => void = () => {};
    const frames = (async function* () {
      yield sseFrame("first");
      await new Promise<void>((r) => (release = r));
      yield sseFrame("second");
    })();
    const reader = frameStream(frames, () => {}).getReader();
    expect(dec.decode((await reader.read()).value)).toBe("data: first\n\n");
    const pending = reader.read();
    release();
    expect(dec.decode((await pending).value)).toBe("data: second\n\n");
    expect((await reader.read()).done).toBe(true);
  });

  it("runs at most 64 KiB ahead of a client that does not read", async () => {
    let made = 0;
    const frames = (async function* () {
      for (;;) {
        made += 1;
        yield new Uint8Array(1024);
      }
    })();
    const reader = frameStream(frames, () => {}).getReader();
    await reader.read();
    for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 0));
    // 64 frames of 1 KiB fill the queue; the generator then waits with the one it was making.
    expect(made).toBeGreaterThanOrEqual(64);
    expect(made).toBeLessThanOrEqual(66);
    await reader.cancel();
  });

  it("on cancel aborts, closes the generator (its finally runs) and ends the response time", async () => {
    const timing = new ResponseTiming(Date.now());
    let cancelled = false;
    let closed = false;
    const frames = (async function* () {
      try {
        for (;;) {
          yield sseFrame("tick");
          await new Promise((r) => setTimeout(r, 5));
        }
      } finally {
        closed = true;
      }
    })();
    const body = frameStream(frames, () => (cancelled = true), timing);
    const reader = body.getReader();
    await reader.read();
    await reader.cancel();
    expect(cancelled).toBe(true);
    expect(closed).toBe(true);
    expect(await timing.sent).toBeGreaterThan(0);
  });

  it("delivers the frames made before a failure, then fails the stream", async () => {
    const frames = (async function* () {
      yield sseFrame("one");
      yield sseFrame("two");
      throw new Error("upstream gone");
    })();
    const reader = frameStream(frames, () => {}).getReader();
    let text = "";
    await expect(
      (async () => {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return;
          text += dec.decode(value);
        }
      })(),
    ).rejects.toThrow("upstream gone");
    expect(text).toBe("data: one\n\ndata: two\n\n");
  });
});

describe("ResponseTiming with a body that times itself", () => {
  it("hands the response over as it is and ends when the body's last frame is read", async () => {
    const timing = new ResponseTiming(Date.now());
    const frames = (async function* () {
      yield sseFrame("only");
    })();
    const res = new Response(
      frameStream(frames, () => {}, timing),
      {
        headers: { "content-type": "text/event-stream" },
      },
    );
    expect(timing.watch(res)).toBe(res);
    let ended = false;
    void timing.sent.then(() => (ended = true));
    await new Promise((r) => setTimeout(r, 0));
    expect(ended).toBe(false);
    expect(await res.text()).toBe("data: only\n\n");
    await timing.sent;
    expect(ended).toBe(true);
  });

  it("still wraps a streamed body it was not told about", async () => {
    const timing = new ResponseTiming(Date.now());
    const res = new Response(new Blob(["data: x\n\n"]).stream(), {
      headers: { "content-type": "text/event-stream" },
    });
    const watched = timing.watch(res);
    expect(watched).not.toBe(res);
    expect(await watched.text()).toBe("data: x\n\n");
    await timing.sent;
  });
});
