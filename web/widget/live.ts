/**
 * The visitor's live channel (docs/handoff.md): while a person handles the conversation, their
 * messages and the notices ("Anna joined", "The assistant is back") arrive over a WebSocket. The
 * widget asks a one-use ticket with its key and visitor token, opens the socket, and resumes after
 * the highest seq it has: after a drop it reconnects (a new ticket) and resumes again, and it
 * ignores any seq it already has, so nothing is lost and nothing shows twice.
 */
import type { LiveServerFrame, TranscriptEntry } from "../../src/handoff/types";
import { keepAlive } from "../shared/keep-alive";
import { type Client, json, NetworkError } from "./api";

type StateFrame = Extract<LiveServerFrame, { type: "state" }>;

export interface LiveHandlers {
  entry(e: TranscriptEntry): void;
  state(s: StateFrame): void;
}

const ENDED = new Set(["resolved", "ended"]);
/** Reconnect waits: 1, 2, 4 ... 30 s. */
const MAX_WAIT_MS = 30_000;

export class LiveChannel {
  #seen: number;
  #ws: WebSocket | undefined;
  #stopped = false;
  #failures = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly api: Client,
    readonly conversation: string,
    /** The highest seq already shown (from the transcript): the socket resumes after it. */
    seen: number,
    readonly on: LiveHandlers,
    readonly socket: (url: string) => WebSocket = (url) => new WebSocket(url),
    /** How often an open socket pings (web/shared/keep-alive.ts). */
    readonly keepAliveMs?: number,
  ) {
    this.#seen = seen;
    void this.#connect();
  }

  /** The highest seq received. */
  get seen(): number {
    return this.#seen;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#ws?.close(1000, "done");
    this.#ws = undefined;
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    let url: string;
    try {
      ({ url } = await json<{ url: string }>(
        this.api,
        "POST",
        `/v1/conversations/${this.conversation}/live`,
      ));
    } catch (err) {
      // Gone or ended (4xx other than throttling): nothing to listen to.
      const status = (err as { status?: number }).status;
      if (!(err instanceof NetworkError) && status !== 429 && status !== 503) return this.stop();
      return this.#retry();
    }
    if (this.#stopped) return;
    const ws = this.socket(url);
    this.#ws = ws;
    ws.addEventListener("open", () => {
      this.#failures = 0;
      ws.send(JSON.stringify({ type: "resume", after: this.#seen }));
      keepAlive(ws, this.keepAliveMs);
    });
    ws.addEventListener("message", (ev) => this.#frame(ev.data));
    ws.addEventListener("close", () => {
      if (this.#ws === ws) this.#ws = undefined;
      this.#retry();
    });
  }

  #frame(data: unknown): void {
    let f: LiveServerFrame;
    try {
      f = JSON.parse(String(data)) as LiveServerFrame;
    } catch {
      return;
    }
    if (f.type === "entry") {
      // Exactly once: a seq at or below the highest one shown is a repeat.
      if (f.seq <= this.#seen) return;
      this.#seen = f.seq;
      const { type: _type, ...entry } = f;
      this.on.entry(entry);
    } else if (f.type === "state") {
      this.on.state(f);
      if (ENDED.has(f.status)) this.stop();
    }
  }

  #retry(): void {
    if (this.#stopped || this.#timer) return;
    const wait = Math.min(MAX_WAIT_MS, 1_000 * 2 ** this.#failures) * (0.8 + Math.random() * 0.4);
    this.#failures += 1;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#connect();
    }, wait);
  }
}
