import { expect } from "vitest";
import type { StartedConversation } from "../../../src/api-types";
import type { LiveServerFrame } from "../../../src/handoff/types";
import { chatTenant } from "../chat/helpers";
import { admin, BASE, call, createKey, send, uniqueId } from "../helpers";

export const SITE = "https://shop.example";
const PASSWORD = "correct horse battery staple";

export interface Session {
  cookie: string;
  csrf: string;
}

/** A JSON request as the console's page sends it: the cookie, and the CSRF header on writes. */
export function consoleSend(method: string, path: string, session: Session | undefined, body?: unknown) {
  const h: Record<string, string> = {};
  if (session) {
    h.cookie = session.cookie;
    h["x-csrf-token"] = session.csrf;
  }
  if (body !== undefined) h["content-type"] = "application/json";
  return call(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** Invites an operator through the admin API and accepts the invitation: a signed-in session. */
export async function operator(tenantId: string, role: "owner" | "agent", name = `Op ${uniqueId("n")}`) {
  const email = `${uniqueId("op")}@example.com`;
  const invited = await admin("POST", `/tenants/${tenantId}/operators`, { email, name, role });
  expect(invited.status).toBe(201);
  const { operator: op, invite_url } = (await invited.json()) as {
    operator: { id: string };
    invite_url: string;
  };
  const accepted = await consoleSend("POST", "/operator/invitations/accept", undefined, {
    token: invite_url.split("#invite=")[1],
    password: PASSWORD,
  });
  expect(accepted.status).toBe(200);
  const cookie = (accepted.headers.get("set-cookie") ?? "").split(";")[0] as string;
  const { csrf_token } = (await accepted.json()) as { csrf_token: string };
  return { id: op.id, name, session: { cookie, csrf: csrf_token } };
}

/** A tenant whose widget runs on SITE: its secret and publishable keys. */
export async function widgetTenant(overrides: Record<string, unknown> = {}) {
  const t = await chatTenant({
    ...overrides,
    allowed_origins: [SITE],
    address_messages_per_minute: 10_000,
    address_conversations_per_hour: 10_000,
  });
  const pk = (await createKey(t.id, "publishable")).key;
  return { ...t, pk };
}

/** A browser visitor of the tenant's site, from its own address. */
export function visitor(pk: string) {
  const ip = `198.51.100.7-${uniqueId("ip")}`;
  let token: string | undefined;
  const headers = () => ({
    origin: SITE,
    "cf-connecting-ip": ip,
    ...(token ? { "x-visitor-token": token } : {}),
  });
  return {
    async start(): Promise<StartedConversation> {
      const res = await send("POST", "/v1/conversations", pk, {}, headers());
      expect(res.status).toBe(201);
      const started = (await res.json()) as StartedConversation;
      token = started.visitor_token;
      return started;
    },
    say: (id: string, content: string) =>
      send("POST", `/v1/conversations/${id}/messages`, pk, { content }, headers()),
    ticket: (id: string) => send("POST", `/v1/conversations/${id}/live`, pk, undefined, headers()),
    get token() {
      return token;
    },
    /** The visitor's address (`CF-Connecting-IP`). */
    ip,
  };
}

/** An open live socket and every frame it received, parsed. */
export interface Live {
  ws: WebSocket;
  frames: LiveServerFrame[];
  closed: boolean;
  /** The close frame's code, once closed. */
  closeCode?: number;
  /** Resolves once a frame matching `pred` arrived (among all received so far). */
  until(pred: (f: LiveServerFrame) => boolean, what?: string): Promise<LiveServerFrame>;
  entries(): Extract<LiveServerFrame, { type: "entry" }>[];
}

/** Opens a live socket through the worker (an Upgrade request); `undefined` with the refusal when it is not 101. */
export async function openLive(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ live?: Live; res: Response }> {
  const res = await call(path, { headers: { upgrade: "websocket", ...headers } });
  const ws = res.webSocket;
  if (res.status !== 101 || !ws) return { res };
  ws.accept();
  const frames: LiveServerFrame[] = [];
  const waiters: (() => void)[] = [];
  const live: Live = {
    ws,
    frames,
    closed: false,
    async until(pred, what = "frame") {
      const deadline = Date.now() + 5_000;
      for (;;) {
        const hit = frames.find(pred);
        if (hit) return hit;
        if (Date.now() > deadline) throw new Error(`no ${what} in ${JSON.stringify(frames)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 100);
        });
      }
    },
    entries: () => frames.filter((f): f is Extract<LiveServerFrame, { type: "entry" }> => f.type === "entry"),
  };
  ws.addEventListener("message", (e) => {
    frames.push(JSON.parse(e.data as string) as LiveServerFrame);
    for (const w of waiters.splice(0)) w();
  });
  ws.addEventListener("close", (e) => {
    live.closed = true;
    live.closeCode = e.code;
    for (const w of waiters.splice(0)) w();
  });
  return { live, res };
}

/** The operator console's socket: its session cookie, from the console's own origin. */
export function operatorLive(id: string, session: Session, origin = BASE) {
  return openLive(`/operator/inbox/${id}/live`, { cookie: session.cookie, origin });
}

/** A visitor's socket, with a fresh ticket. */
export async function visitorLive(v: ReturnType<typeof visitor>, id: string) {
  const res = await v.ticket(id);
  expect(res.status).toBe(200);
  const { url } = (await res.json()) as { url: string };
  const u = new URL(url);
  return openLive(`${u.pathname}${u.search}`, { origin: SITE });
}
