import type { PublicConfig, Reply, StartedConversation, ToolFrame, Transcript } from "../../src/api-types";
import { ApiError } from "../shared/api-error";
import { type Client, call, json, NetworkError } from "./api";
import { EN, fill, type Strings, waitFor } from "./i18n";
import type { LiveChannel } from "./live";
import { showSources } from "./sources";
import { readSse } from "./sse";
import { type Memo, VisitorToken } from "./storage";
import { type BotCheck, BotCheckError, botCheck } from "./turnstile";
import type { Actions, Message, Step, View } from "./view";

/** Retries after a lost connection: 1, 2, 4, 8, 15, 15 ... seconds, then the widget gives up. */
const MAX_RETRIES = 8;
const ENDED = new Set(["resolved", "unresolved"]);
/** States in which a person is asked for or writing: the live channel is open. */
const WITH_A_PERSON = new Set(["escalated", "human"]);

let liveCode: Promise<typeof LiveChannel> | undefined;

/** The live channel's code (widget-live.js, next to widget.js), loaded once, when first needed. */
function loadLive(from: string): Promise<typeof LiveChannel> {
  liveCode ??= new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = new URL("widget-live.js", from).href;
    s.onload = () => {
      const live = (window as Window & { chatedgeLive?: typeof LiveChannel }).chatedgeLive;
      if (live) resolve(live);
      else s.onerror?.(new Event("error"));
    };
    s.onerror = () => {
      // The next person asked for tries again.
      liveCode = undefined;
      reject(new Error("widget-live.js did not load"));
    };
    document.head.append(s);
  });
  return liveCode;
}

/** Waits before retry `n` with jitter, or less if the browser comes back online. */
function backoff(n: number): Promise<void> {
  const ms = Math.min(15_000, 1_000 * 2 ** n) * (0.8 + Math.random() * 0.4);
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      window.removeEventListener("online", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    window.addEventListener("online", done);
  });
}

/** The server refused the start for the bot check (its details carry Turnstile's error codes). */
function botCheckRefused(err: unknown): boolean {
  return (
    err instanceof ApiError &&
    err.status === 403 &&
    Boolean((err.details as { error_codes?: unknown })?.error_codes)
  );
}

/** The status line while a tool runs ("Checking… Looks up an order."); empty once it ended. */
export function toolStatus(frame: ToolFrame, t: Strings = EN): string {
  return frame.phase === "start" ? `${t.checking} ${frame.label}`.trim() : "";
}

/** What to tell the visitor about a failure, in `t`'s language; `after`: seconds left to wait. */
export function explain(err: unknown, t: Strings = EN, after?: number): string {
  if (err instanceof BotCheckError || botCheckRefused(err)) return t.notPerson;
  if (err instanceof NetworkError) return t.unreachable;
  if (!(err instanceof ApiError)) return t.generic;
  const wait = after ?? err.retryAfterSeconds;
  const level = (err.details as { level?: unknown } | undefined)?.level;
  if (err.status === 429 && (level === "budget" || err.code === "BUDGET_EXCEEDED"))
    return fill(t.budget, wait ? fill(t.inWait, waitFor(t, wait)) : t.later);
  if (err.status === 429) return fill(t.tooFast, waitFor(t, wait ?? 10));
  if (err.status === 401 || err.status === 403) return t.site;
  // The server's own words (English): what was wrong with the message.
  if (err.status === 400 || err.status === 413) return fill(t.cantSend, err.message);
  return t.down;
}

/** The conversation's life: greeting, messages with streamed answers, recovery, end, rating. */
export class Chat implements Actions {
  #conversation: string | null;
  #greeting = "";
  #recorded = 0;
  #loaded = false;
  #sending = false;
  #coolUntil = 0;
  #check: BotCheck | undefined;
  #config: PublicConfig | undefined;
  /** The operator's channel, once a person was asked for (src/handoff). */
  #live: LiveChannel | undefined;
  #loadingLive = false;
  /** The highest entry seq the restored transcript showed. */
  #restoredSeq = 0;

  constructor(
    readonly api: Client,
    readonly session: Memo,
    readonly slot: string,
    readonly view: View,
    /** The configuration as fetched when the widget mounted; undefined if that failed. */
    config?: PublicConfig,
    /** The widget script's URL: widget-live.js is loaded from next to it. */
    readonly from = "",
  ) {
    this.#conversation = session.get(`${slot}:conversation`);
    this.#config = config;
  }

  get #t(): Strings {
    return this.view.t;
  }

  /** Opens the panel; the first time, loads the greeting and this tab's conversation. */
  open(focus = true): void {
    this.view.setOpen(true, focus);
    this.session.set(`${this.slot}:open`, "1");
    if (!this.#loaded) void this.#load(focus);
  }

  close(): void {
    this.view.setOpen(false);
    this.session.set(`${this.slot}:open`, null);
  }

  async #load(focus: boolean): Promise<void> {
    this.#loaded = true;
    // Busy only while something is fetched: disabling the message box the panel just focused
    // would take the focus away for good.
    if (!this.#config || this.#conversation) this.view.busy(true);
    try {
      const config =
        this.#config ?? (await this.#retrying(() => json<PublicConfig>(this.api, "GET", "/v1/config"), true));
      this.#config = config;
      this.view.theme(config.widget);
      this.#greeting = config.greeting;
      if (config.turnstile)
        this.#check = botCheck(config.turnstile, this.view.checkBox, (on) => this.view.showCheck(on));
      if (this.#greeting) this.view.add("assistant", this.#greeting);
      if (this.#conversation) await this.#restore(this.#conversation);
      this.view.busy(false);
      if (focus) this.view.focusInput();
    } catch (err) {
      this.#loaded = false;
      this.view.notice(explain(err, this.#t), "error");
    }
  }

  /**
   * The logged-in user from now on (`chatedge.identify`), or an anonymous visitor (undefined): the
   * same mechanism as data-user-id and data-user-hash. Another identity than the current one does
   * not continue its conversation: the log starts again from the greeting.
   */
  identify(user: Client["user"]): void {
    const id = user?.user_id ?? "";
    const same = id === this.api.visitor.user;
    this.api.user = user;
    if (same) return;
    this.api.visitor = new VisitorToken(this.api.visitor.local, id);
    if (this.#conversation) this.restart();
  }

  /** Shows a conversation kept from an earlier page of this tab, and where it stands. */
  async #restore(id: string): Promise<void> {
    let t: Transcript;
    try {
      t = await this.#retrying(() => json<Transcript>(this.api, "GET", `/v1/conversations/${id}`), true);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return this.#forget();
      throw err;
    }
    for (const m of t.messages) this.view.add(m.role, m.content, m.author);
    this.#recorded = t.messages.filter((m) => m.role === "user").length;
    this.#restoredSeq = t.messages.reduce((n, m) => Math.max(n, m.seq), 0);
    this.#show(ENDED.has(t.state) ? (t.csat === null ? "rate" : "thanks") : "chat");
    if (WITH_A_PERSON.has(t.state)) void this.#listen();
  }

  /**
   * Opens the live channel: a person's messages and the notices arrive there. The visitor's own
   * messages and the bot's answers come with each REST answer, so the channel shows only the rest.
   */
  async #listen(): Promise<void> {
    const id = this.#conversation;
    if (this.#live || this.#loadingLive || !id) return;
    this.#loadingLive = true;
    let Live: typeof LiveChannel;
    try {
      Live = await loadLive(this.from);
    } catch {
      // Without it a person's answer shows when the transcript is next read (a reload).
      return;
    } finally {
      this.#loadingLive = false;
    }
    // The conversation may have been forgotten (or another opened) while the code loaded.
    if (this.#live || this.#conversation !== id) return;
    this.#live = new Live(this.api, id, this.#restoredSeq, {
      entry: (e) => {
        if (e.role !== "operator" && e.role !== "system") return;
        const m = this.view.add(e.role, e.content, e.author);
        this.view.announce(`${e.author ?? ""} ${m.shown()}`.trim());
      },
      state: (s) => {
        if (s.status === "resolved" || s.status === "ended") this.#show("rate");
      },
    });
  }

  #forget(): void {
    this.#live?.stop();
    this.#live = undefined;
    this.#restoredSeq = 0;
    this.#conversation = null;
    this.#recorded = 0;
    this.session.set(`${this.slot}:conversation`, null);
  }

  #show(step: Step): void {
    this.view.step(step, this.#conversation !== null);
  }

  /** Sends the visitor's message and streams the answer into the log. */
  send(text: string): void {
    if (this.#sending || Date.now() < this.#coolUntil) return;
    this.#sending = true;
    this.view.busy(true);
    this.view.notice("");
    this.view.input.value = "";
    const mine = this.view.add("user", text);
    void this.#send(text)
      .catch((err: unknown) => {
        mine.el.remove();
        this.view.input.value = text;
        this.view.notice(explain(err, this.#t), "error");
        if (err instanceof ApiError && err.status === 429) this.#coolDown(err);
      })
      .finally(() => {
        this.#sending = false;
        if (Date.now() >= this.#coolUntil) this.view.busy(false);
        this.view.focusInput();
      });
  }

  async #send(text: string): Promise<void> {
    if (!this.#conversation) await this.#start();
    try {
      await this.#deliver(text);
    } catch (err) {
      // The conversation ended meanwhile (idle timeout) or is gone: carry on in a new one.
      if (!(err instanceof ApiError && (err.status === 404 || err.status === 409))) throw err;
      this.#forget();
      await this.#start();
      await this.#deliver(text);
    }
  }

  async #start(): Promise<void> {
    const check = this.#check;
    let c: StartedConversation;
    if (!check) c = await this.#begin();
    else if (!this.api.visitor.get()) c = await this.#checked(check);
    else {
      // A visitor token is the proof of an earlier check, unless the server no longer takes it.
      c = await this.#begin().catch((err: unknown) => {
        if (botCheckRefused(err)) return this.#checked(check);
        throw err;
      });
    }
    if (c.visitor_token) this.api.visitor.set(c.visitor_token);
    this.#conversation = c.id;
    this.#recorded = 0;
    this.session.set(`${this.slot}:conversation`, c.id);
    this.#show("chat");
  }

  #begin(turnstileToken?: string): Promise<StartedConversation> {
    const body = { channel: "web", turnstile_token: turnstileToken, ...this.api.user };
    return this.#retrying(() => json<StartedConversation>(this.api, "POST", "/v1/conversations", body));
  }

  /** Passes the bot check, then starts with its token; the check goes away once it has worked. */
  async #checked(check: BotCheck): Promise<StartedConversation> {
    let passed = false;
    try {
      const c = await this.#begin(await check.token());
      passed = true;
      return c;
    } finally {
      check.spent(passed);
    }
  }

  /**
   * Streams the answer; when the connection drops, asks the transcript whether the message
   * arrived before sending it again, so a message is never recorded twice.
   */
  async #deliver(text: string): Promise<void> {
    const reply = this.view.add("assistant", "");
    reply.el.setAttribute("aria-busy", "true");
    this.view.announce(this.#t.answering);
    try {
      let resend = true;
      for (let n = 0; ; n++) {
        if (resend) {
          try {
            await this.#stream(text, reply);
            return this.view.notice("");
          } catch (err) {
            if (!(err instanceof NetworkError)) throw err;
          }
        } else {
          const arrived = await this.#arrived(reply);
          if (arrived) return this.view.notice("");
          if (arrived === false) {
            resend = true;
            continue;
          }
        }
        if (n >= MAX_RETRIES) throw new NetworkError("gave up reconnecting");
        this.view.notice(this.#t.offline);
        await backoff(n);
        resend = false;
      }
    } catch (err) {
      reply.el.remove();
      this.view.announce("");
      throw err;
    } finally {
      reply.el.removeAttribute("aria-busy");
    }
  }

  /** The finished answer: shown, and said once to screen readers. */
  #answered(reply: Message, content: string): void {
    reply.show(content);
    this.view.announce(`${this.#t.bot} ${reply.shown()}`);
    this.view.scroll();
  }

  async #stream(text: string, reply: Message): Promise<void> {
    const res = await call(
      this.api,
      "POST",
      `/v1/conversations/${this.#conversation}/messages`,
      { content: text, stream: true },
      "text/event-stream",
    );
    if (!res.body) throw new NetworkError("no response body");
    let shown = "";
    reply.show("");
    try {
      for await (const ev of readSse(res.body)) {
        if (ev.event === "delta" || ev.event === "policy") {
          shown += (JSON.parse(ev.data) as { text: string }).text;
          reply.show(shown);
          this.view.scroll();
        } else if (ev.event === "tool") {
          // A tool is running server-side (an order lookup...): say so until it ends.
          this.view.notice(toolStatus(JSON.parse(ev.data) as ToolFrame, this.#t));
        } else if (ev.event === "error") {
          reply.el.classList.add("failed");
        } else if (ev.event === "done") {
          this.view.notice("");
          const done = JSON.parse(ev.data) as Reply;
          this.#recorded += 1;
          if (WITH_A_PERSON.has(done.state)) void this.#listen();
          // A person holds the conversation: no answer here, theirs arrives on the live channel.
          if (!done.message) {
            reply.el.remove();
            this.view.announce("");
            return;
          }
          this.#answered(reply, done.message.content);
          showSources(reply.el, done.sources ?? [], this.#t.sources);
          return;
        }
      }
    } catch (err) {
      throw err instanceof SyntaxError ? new NetworkError("malformed event") : new NetworkError(String(err));
    }
    throw new NetworkError("the answer stopped before it was complete");
  }

  /** True: the server has the message (its answer is shown); false: it never arrived; undefined: unknown. */
  async #arrived(reply: Message): Promise<boolean | undefined> {
    let t: Transcript;
    try {
      t = await json<Transcript>(this.api, "GET", `/v1/conversations/${this.#conversation}`);
    } catch (err) {
      if (err instanceof NetworkError) return undefined;
      throw err;
    }
    const users = t.messages.filter((m) => m.role === "user").length;
    if (users <= this.#recorded) return false;
    const last = t.messages[t.messages.length - 1];
    this.#recorded = users;
    if (WITH_A_PERSON.has(t.state)) void this.#listen();
    if (last?.role === "assistant") this.#answered(reply, last.content);
    else reply.el.remove();
    return true;
  }

  /**
   * Runs `fn`, retrying with backoff while the network is down. A read (`waitOut`) refused with 429
   * is tried again once its Retry-After has passed (a minute at most; the address's read window is a
   * minute long), counting down meanwhile: visitors behind one address share its windows, so a
   * page's restore can meet a full one through no doing of its own.
   */
  async #retrying<T>(fn: () => Promise<T>, waitOut = false): Promise<T> {
    for (let n = 0; ; n++) {
      try {
        const out = await fn();
        if (n > 0) this.view.notice("");
        return out;
      } catch (err) {
        const wait = err instanceof ApiError && err.status === 429 ? (err.retryAfterSeconds ?? 10) : 0;
        if (waitOut && wait > 0 && wait <= 60 && n < MAX_RETRIES) {
          await this.#countDown(Date.now() + wait * 1_000, (left) =>
            fill(this.#t.busyHere, waitFor(this.#t, left)),
          );
          continue;
        }
        if (!(err instanceof NetworkError) || n >= MAX_RETRIES) throw err;
        this.view.notice(this.#t.offline);
        await backoff(n);
      }
    }
  }

  /** Shows `say(seconds left)`, second by second, until `until`; then clears the notice. */
  #countDown(until: number, say: (left: number) => string): Promise<void> {
    return new Promise((resolve) => {
      const tick = () => {
        const left = Math.ceil((until - Date.now()) / 1_000);
        if (left <= 0) {
          this.view.notice("");
          return resolve();
        }
        this.view.notice(say(left), "error");
        setTimeout(tick, Math.min(1_000, until - Date.now()));
      };
      tick();
    });
  }

  /** Keeps the composer disabled until Retry-After has passed, counting down. */
  #coolDown(err: ApiError): void {
    const s = Math.max(1, err.retryAfterSeconds ?? 10);
    if (s > 120) return;
    this.#coolUntil = Date.now() + s * 1_000;
    this.view.busy(true);
    void this.#countDown(this.#coolUntil, (left) => explain(err, this.#t, left)).then(() => {
      if (!this.#sending) this.view.busy(false);
      this.view.focusInput();
    });
  }

  /** The end button: ask whether the question was answered first. */
  askEnd(): void {
    this.#show("resolve");
  }

  /** Ends the conversation (resolved or not), then asks for a rating; null goes back to the chat. */
  end(resolved: boolean | null): void {
    const id = this.#conversation;
    if (resolved === null || !id) {
      this.#show("chat");
      return;
    }
    void this.#act(async () => {
      await this.#retrying(() => json(this.api, "POST", `/v1/conversations/${id}/end`, { resolved }));
      this.#show("rate");
    });
  }

  rate(csat: number): void {
    const id = this.#conversation;
    if (!id) return;
    void this.#act(async () => {
      await this.#retrying(() => json(this.api, "POST", `/v1/conversations/${id}/feedback`, { csat }));
      this.#show("thanks");
    });
  }

  /** A fresh conversation in this tab, starting from the greeting. */
  restart(): void {
    this.#forget();
    this.view.log.replaceChildren();
    if (this.#greeting) this.view.add("assistant", this.#greeting);
    this.#show("chat");
    this.view.busy(false);
    this.view.focusInput();
  }

  async #act(fn: () => Promise<void>): Promise<void> {
    const buttons = this.view.panel.querySelectorAll<HTMLButtonElement>(".step button");
    for (const b of buttons) b.disabled = true;
    try {
      await fn();
      this.view.notice("");
    } catch (err) {
      this.view.notice(explain(err, this.#t), "error");
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }
}
