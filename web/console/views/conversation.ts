/**
 * One conversation (docs/handoff.md): its transcript, each answered message's model, tokens, cost,
 * latency, blocked topic and tool calls, and the live panel: take over, write to the visitor, hand
 * back to the bot, resolve. An operator's page follows the conversation live over
 * `/operator/inbox/{id}/live`: it resumes after the highest seq it shows, so a reconnect loses no
 * entry and shows none twice. Only an operator (a person) can hold a conversation; the admin and a
 * tenant key read it and may hand back or resolve.
 */
import type {
  InboxConversation,
  InboxEntry,
  InboxItem,
  LiveClientFrame,
  LiveServerFrame,
} from "../../../src/api-types";
import { el } from "../../shared/dom";
import { keepAlive } from "../../shared/keep-alive";
import type { Api } from "../api";
import { int, ms, usd } from "../format";
import { button, errorBox, load } from "../ui";
import { STATUS_LABELS, when } from "./inbox";

type Turn = InboxConversation["turns"][number];

const ROLE_LABELS = { user: "Visitor", assistant: "Assistant", operator: "Operator", system: "" } as const;

/** The figures of one answered message, as one line; a message no model answered says so. */
export function turnLine(t: Turn): string {
  const parts =
    t.called_model === null
      ? [`no model call (${t.outcome})`, ms(t.latency_ms)]
      : [
          `model ${t.called_model !== t.model ? `${t.model} → ${t.called_model}` : t.model}`,
          `${int(t.input_tokens)} in / ${int(t.output_tokens)} out tokens`,
          usd(t.cost_usd),
          ms(t.latency_ms),
          t.outcome,
        ];
  if (t.blocked_topic) parts.push(`blocked: ${t.blocked_topic}`);
  const calls =
    t.tools.length > 0
      ? t.tools.map((c) => (c.ok ? c.name : `${c.name} failed (${c.failure ?? "error"})`))
      : t.tools_used;
  if (calls.length > 0) parts.push(`tools: ${calls.join(", ")}`);
  if (t.error) parts.push(`error: ${t.error}`);
  return parts.join(" · ");
}

/** The close code of a socket whose console session ended (src/chat/conversation-do.ts `closeSessions`). */
const SESSION_ENDED = 4003;

/** The live socket's URL for a conversation, on the page's own origin. */
export function liveUrl(origin: string, conversationId: string): string {
  return `${origin.replace(/^http/, "ws")}/operator/inbox/${encodeURIComponent(conversationId)}/live`;
}

/** The transcript and live panel of one conversation. */
export function conversationView(
  api: Api,
  tenantId: string,
  conversationId: string,
  base: string,
): HTMLElement {
  const path = `${api.tenantPath(tenantId, "inbox")}/${encodeURIComponent(conversationId)}`;
  const session = api.session;
  const operatorId = session.kind === "operator" ? session.operatorId : null;
  const root = el("div", { class: "conversation" });
  const facts = el("dl", { class: "facts" });
  const transcript = el("ol", { class: "transcript", "aria-label": "Transcript", "aria-live": "polite" });
  const panel = el("div", { class: "live-panel" });
  const status = el("div", { "aria-live": "polite" });
  const connection = el("p", { class: "muted", "data-live": "off" });

  const seen = new Set<number>();
  let highest = 0;
  let item: InboxItem | undefined;
  let turns: Turn[] = [];
  let userEntries = 0;
  let socket: WebSocket | undefined;
  let retryMs = 500;
  // Connections that closed before they opened, in a row: a refused socket (a session that ended)
  // is not retried forever.
  let refused = 0;

  const failed = (err: unknown) => status.replaceChildren(errorBox(err));

  const renderFacts = (i: InboxItem) => {
    const row = (k: string, v: string, attrs: Record<string, string> = {}) => [
      el("dt", {}, k),
      el("dd", attrs, v),
    ];
    facts.replaceChildren(
      ...row("Status", i.holder ? `${STATUS_LABELS[i.status]} (${i.holder.name})` : STATUS_LABELS[i.status], {
        "data-status": i.status,
      }),
      ...(i.waiting_since !== null ? row("Waiting since", when(i.waiting_since)) : []),
      ...row("Channel", i.channel),
      ...row("Experiment", i.experiment ? `${i.experiment}: ${i.variant ?? "—"}` : "—"),
      ...row("CSAT", i.csat === null ? "—" : String(i.csat)),
      ...row("Cost", usd(i.total_cost_usd)),
      ...row("Started", when(i.started_at)),
      ...row("Last activity", when(i.last_activity_at)),
    );
  };

  /** Adds an entry unless its seq is already shown (a reconnect's resume may repeat the tail). */
  const addEntry = (e: InboxEntry) => {
    if (seen.has(e.seq)) return;
    seen.add(e.seq);
    highest = Math.max(highest, e.seq);
    const who = e.role === "operator" ? (e.author ?? "Operator") : ROLE_LABELS[e.role];
    const li = el(
      "li",
      { class: `entry entry-${e.role}`, "data-seq": String(e.seq), "data-role": e.role },
      e.role === "system"
        ? el("p", { class: "notice" }, e.content)
        : el(
            "div",
            {},
            el("span", { class: "who" }, who),
            " ",
            el("time", { class: "muted", datetime: new Date(e.at).toISOString() }, when(e.at)),
            el("p", { class: "content" }, e.content),
          ),
    );
    // A turn is recorded with its visitor message's own time (src/chat/conversation-message.ts);
    // the n-th visitor message is turn n - 1 otherwise.
    if (e.role === "user") {
      const t = turns.find((x) => x.at === e.at) ?? turns.find((x) => x.turn_index === userEntries);
      userEntries++;
      if (t) li.append(el("p", { class: "turn-meta", "data-turn": String(t.turn_index) }, turnLine(t)));
    }
    // Entries arrive in seq order but a sent message's answer can race the socket's copy.
    const after = [...transcript.children].find((c) => Number((c as HTMLElement).dataset.seq) > e.seq);
    transcript.insertBefore(li, after ?? null);
  };

  const act = async (what: "takeover" | "handback" | "resolve") => {
    try {
      const next = await api.send<InboxItem>("POST", `${path}/${what}`);
      setItem(next);
      status.replaceChildren();
      if (!socket) await reload();
    } catch (err) {
      failed(err);
    }
  };

  const message = el("textarea", {
    id: "operator-message",
    rows: "3",
    maxlength: "8000",
    "aria-label": "Message to the visitor",
  }) as HTMLTextAreaElement;
  const composer = el(
    "form",
    { class: "stack composer" },
    el("label", { for: "operator-message" }, "Message to the visitor"),
    message,
    el("button", { type: "submit", class: "primary" }, "Send"),
  );
  composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const content = message.value.trim();
    if (content === "") return;
    api
      .send<InboxEntry>("POST", `${path}/messages`, { content })
      .then((entry) => {
        message.value = "";
        status.replaceChildren();
        addEntry(entry);
      })
      .catch(failed);
  });

  const renderPanel = (i: InboxItem) => {
    const ended = i.status === "resolved" || i.status === "ended";
    const mine = i.holder !== null && i.holder.operator_id === operatorId;
    const canTake = operatorId !== null && (i.status === "open" || i.status === "waiting");
    const owner = session.kind !== "operator" || session.role === "owner";
    const kids: (HTMLElement | string)[] = [];
    if (ended)
      kids.push(el("p", {}, `This conversation has ${i.status === "resolved" ? "been resolved" : "ended"}.`));
    if (canTake) kids.push(button("Take over", () => void act("takeover"), { class: "primary" }));
    if (mine) kids.push(composer);
    if (i.status === "human" && (mine || owner)) kids.push(button("Hand back", () => void act("handback")));
    if (!ended && (mine || owner || i.status !== "human"))
      kids.push(button("Resolve", () => void act("resolve")));
    if (i.status === "human" && !mine)
      kids.push(
        el("p", { class: "muted" }, `${i.holder?.name ?? "Another operator"} holds this conversation.`),
      );
    if (operatorId === null && !ended)
      kids.push(
        el("p", { class: "muted" }, "Only an operator signed in as themselves can take a conversation over."),
      );
    // Redrawn on every live frame: the operator may be typing in it. Moving the composer takes the
    // focus away, and the keys typed next would go nowhere, so the focus and caret are put back.
    const focused = document.activeElement;
    const caret = focused === message ? [message.selectionStart, message.selectionEnd] : undefined;
    panel.replaceChildren(el("h3", {}, "Live"), connection, ...kids);
    if (focused instanceof HTMLElement && focused !== document.activeElement && focused.isConnected) {
      focused.focus();
      if (caret) message.setSelectionRange(caret[0] ?? 0, caret[1] ?? 0);
    }
  };

  const setItem = (i: InboxItem) => {
    item = i;
    renderFacts(i);
    renderPanel(i);
  };

  const onFrame = (f: LiveServerFrame) => {
    if (f.type === "entry") {
      addEntry(f);
      if (item)
        setItem({ ...item, preview: f.content, last_activity_at: Math.max(item.last_activity_at, f.at) });
    } else if (f.type === "state" && item) {
      setItem({
        ...item,
        status: f.status,
        // An operator's socket is told the holder's id (a visitor's only the name).
        holder:
          f.holder && "operatorId" in f.holder
            ? { operator_id: f.holder.operatorId, name: f.holder.name }
            : null,
      });
    } else if (f.type === "error") {
      connection.textContent = `Live updates stopped: ${f.message}`;
    }
  };

  // Only a console session can open the socket (the cookie); keys and the admin refresh by hand.
  const connect = () => {
    if (operatorId === null || !root.isConnected || socket) return;
    const ws = new WebSocket(liveUrl(location.origin, conversationId));
    socket = ws;
    ws.addEventListener("open", () => {
      retryMs = 500;
      refused = 0;
      connection.textContent = "Live: new messages appear as they are written.";
      connection.dataset.live = "on";
      ws.send(JSON.stringify({ type: "resume", after: highest } satisfies LiveClientFrame));
      keepAlive(ws);
    });
    ws.addEventListener("message", (e) => {
      try {
        onFrame(JSON.parse(String(e.data)) as LiveServerFrame);
      } catch {
        // A frame this page cannot read is skipped; the next resume fills any gap.
      }
    });
    ws.addEventListener("close", (e) => {
      const opened = connection.dataset.live === "on";
      socket = undefined;
      connection.dataset.live = "off";
      const ended = item?.status === "resolved" || item?.status === "ended";
      if (!root.isConnected || ended) return;
      // The console session ended (signed out here or elsewhere, or by an owner): no reconnecting.
      if (e.code === SESSION_ENDED) {
        connection.textContent = "Your console session has ended: sign in again to see live updates.";
        return;
      }
      if (!opened && ++refused >= 5) {
        connection.textContent = "Live updates are unavailable; reload the page to try again.";
        return;
      }
      connection.textContent = "Live connection lost; reconnecting…";
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10_000);
    });
  };

  const reload = async () => {
    const c = await api.get<InboxConversation>(path);
    turns = c.turns;
    const { entries, turns: _turns, ...rest } = c;
    // Figures under visitor messages need the turns: redraw the entries with them.
    transcript.replaceChildren();
    seen.clear();
    highest = 0;
    userEntries = 0;
    for (const e of entries) addEntry(e);
    setItem({ ...rest, turns: c.turns.length });
  };

  const body = el("div");
  void load(body, async () => {
    await reload();
    connect();
    return el(
      "div",
      { class: "conversation-grid" },
      el("div", {}, facts, el("h3", {}, "Transcript"), transcript),
      el(
        "div",
        {},
        panel,
        status,
        operatorId === null ? button("Refresh", () => void reload().catch(failed)) : "",
      ),
    );
  });

  // Leaving the page (another hash) closes the socket; the router has replaced this view by then.
  const leave = () => {
    if (root.isConnected) return;
    window.removeEventListener("hashchange", leave);
    socket?.close(1000, "left the page");
  };
  window.addEventListener("hashchange", leave);

  root.append(
    el("p", {}, el("a", { href: `${base}/inbox` }, "← Inbox")),
    el("h2", {}, `Conversation ${conversationId}`),
    body,
  );
  return root;
}
