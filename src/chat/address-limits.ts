/**
 * Per-address limits on browser traffic (publishable keys): messages per minute and new
 * conversations per hour from one client address (the tenant's settings), counted exactly in the
 * tenant's gate. Whatever visitor tokens a script collects, one address gets at most this much of
 * the tenant's bot.
 */
import type { Context } from "hono";
import {
  type AddressHit,
  type AddressHitResult,
  type AddressKind,
  LONGEST_WINDOW_MS,
  TENANT_WIDE,
} from "../admission/address-windows";
import { tenantGate } from "../admission/client";
import { gateFailure, rateLimitFields } from "../admission/headers";
import type { AppEnv } from "../app";
import { sha256Hex } from "../auth/keys";
import { IsolateCache } from "../cache/isolate";
import { AppError } from "../errors";

/**
 * The defaults of the tenant's `address_messages_per_minute` and `address_conversations_per_hour`:
 * generous for people behind one address (an office), small for a script.
 */
export const ADDRESS_MESSAGES_PER_MINUTE = 30;
export const ADDRESS_CONVERSATIONS_PER_HOUR = 20;
/**
 * Transcript reads a minute from one address, as a multiple of its messages a minute. The widget
 * reads a transcript when a page shows a conversation kept from an earlier page, and after a send
 * whose answer it lost; a script could read a long one in a loop, each read a call to the
 * conversation's object and the whole transcript back.
 */
export const ADDRESS_READS_PER_MESSAGE = 2;

const WINDOWS: Record<AddressKind, { windowMs: number; what: string; policy: string }> = {
  message: { windowMs: 60_000, what: "messages", policy: "address" },
  read: { windowMs: 60_000, what: "transcript reads", policy: "address-reads" },
  conversation: { windowMs: 3_600_000, what: "new conversations", policy: "address-conversations" },
};

/**
 * The address hit a browser's message, transcript read or conversation start counts; none for
 * servers (secret keys). `address` counts it under another key than the client's address, alike.
 */
export function addressHitOf(
  c: Context<AppEnv>,
  kind: AddressKind,
  address = c.get("clientIp"),
): AddressHit | undefined {
  if (c.get("apiKey").kind !== "publishable" || !address) return undefined;
  const tenant = c.get("tenant");
  // Configs cached before the settings existed lack them.
  const messages = tenant.addressMessagesPerMinute ?? ADDRESS_MESSAGES_PER_MINUTE;
  const limit =
    kind === "message"
      ? messages
      : kind === "read"
        ? messages * ADDRESS_READS_PER_MESSAGE
        : (tenant.addressConversationsPerHour ?? ADDRESS_CONVERSATIONS_PER_HOUR);
  return { tenantId: tenant.id, address, kind, limit, windowMs: WINDOWS[kind].windowMs };
}

export type Refused = AddressHitResult & { ok: false };

// The address windows this isolate was told are full, and until when a slot frees: timed from
// before the gate was asked, so never later than the gate's own answer. A script past its limit is
// refused here, not by a call to the tenant's gate (which all the tenant's visitors share) for each
// of its requests. Keyed by the limit too: a tenant that raises it is asked again at once.
const full = new IsolateCache<number>(10_000, LONGEST_WINDOW_MS);
const fullKey = (h: AddressHit) => `${h.tenantId}\u0000${h.kind}\u0000${h.limit}\u0000${h.address}`;

/** The refusal this isolate already knows for the hit, while its window is full; else undefined. */
export function knownRefusal(hit: AddressHit, now = Date.now()): Refused | undefined {
  const until = full.get(fullKey(hit), now);
  if (until === undefined || until <= now) return undefined;
  const ms = until - now;
  return {
    ok: false,
    limit: hit.limit,
    remaining: 0,
    retryAfterSeconds: Math.ceil(ms / 1000),
    retryAfterMs: ms,
  };
}

/** Remembers the gate's refusal of a hit it was asked for at `askedAt` (this isolate's clock). */
export function rememberRefusal(hit: AddressHit, result: Refused, askedAt: number): void {
  if (result.retryAfterMs > 0) full.set(fullKey(hit), askedAt + result.retryAfterMs, askedAt);
}

/** Counts one browser message or transcript read against its address; throws 429 past the limit. */
export async function limitAddress(c: Context<AppEnv>, kind: AddressKind): Promise<void> {
  const hit = addressHitOf(c, kind);
  if (hit) await hitWindows(c, [{ hit, level: "address" }]);
}

/**
 * Counts a browser's conversation start in the windows it passes through: its address's hour; a
 * returning visitor's hour, on its token's id from whatever address (a visitor token, which spares
 * its holder the bot check, shared among many addresses starts as one visitor); and, with `site`,
 * the whole tenant's minute (`siteStartWindow`). One call to the gate, counted in all or in none;
 * 429 names the first full window. Servers (secret keys) count in none.
 */
export async function limitStart(c: Context<AppEnv>, { site }: { site: boolean }): Promise<void> {
  if (c.get("apiKey").kind !== "publishable") return;
  const windows: Window[] = [];
  const address = addressHitOf(c, "conversation");
  if (address) windows.push({ hit: address, level: "address" });
  const known = c.get("visitor");
  const visitor = known && addressHitOf(c, "conversation", await visitorKey(known.visitorId));
  if (visitor) windows.push({ hit: visitor, level: "visitor" });
  const siteWindow = siteStartWindow(c);
  if (site) windows.push(siteWindow);
  else {
    // Counted later (after the bot check), but a minute this isolate knows is full refuses now (a
    // full address or visitor first: theirs is the longer wait): no address slot, no siteverify
    // call, no spent Turnstile token for a start that cannot happen.
    refuseKnown([...windows, siteWindow]);
  }
  if (windows.length > 0) await hitWindows(c, windows);
}

/** Refuses with the first of the windows this isolate knows to be full, if any. */
function refuseKnown(windows: readonly Window[]): void {
  for (const w of windows) {
    const known = knownRefusal(w.hit);
    if (known) throw addressRefusal(w.hit, known, w.level);
  }
}

/**
 * Counts a browser's conversation start in the whole tenant's minute alone: for a start that had to
 * pass the bot check first, so that starts with junk tokens take nothing from the site's real visitors.
 */
export async function limitSiteStart(c: Context<AppEnv>): Promise<void> {
  if (c.get("apiKey").kind === "publishable") await hitWindows(c, [siteStartWindow(c)]);
}

/**
 * The whole tenant's minute of browser starts (`conversations_per_minute`, else
 * `rate_limit_per_minute`: a conversation is started to send messages), which bounds what scripts
 * on many addresses get between them.
 */
function siteStartWindow(c: Context<AppEnv>): Window {
  const tenant = c.get("tenant");
  return {
    hit: {
      tenantId: tenant.id,
      address: TENANT_WIDE,
      kind: "conversation",
      // Configs cached before the setting existed lack it.
      limit: tenant.conversationsPerMinute ?? tenant.rateLimitPerMinute,
      windowMs: TENANT_STARTS_WINDOW_MS,
    },
    level: "tenant",
  };
}

/** The tenant-wide window of browser conversation starts. */
export const TENANT_STARTS_WINDOW_MS = 60_000;

type Level = "address" | "visitor" | "tenant";
/** Whose window a refusal names, in its message. */
const WHOSE: Record<Level, string> = {
  address: "from this address",
  visitor: "by this visitor",
  tenant: "on this site right now",
};
interface Window {
  hit: AddressHit;
  level: Level;
}

/** A visitor's windows live beside the addresses', under a hash of the same shape. */
async function visitorKey(visitorId: string): Promise<string> {
  return (await sha256Hex(`visitor:${visitorId}`)).slice(0, 32);
}

/** Asks the gate for the windows (one call), unless this isolate knows one is full; 429 if one is. */
async function hitWindows(c: Context<AppEnv>, windows: Window[]): Promise<void> {
  refuseKnown(windows);
  const gate = tenantGate(c.get("svc").env, (windows[0] as Window).hit.tenantId);
  const askedAt = Date.now();
  let results: AddressHitResult[];
  try {
    results =
      windows.length === 1
        ? [await gate.hitAddress((windows[0] as Window).hit)]
        : await gate.hitAddresses(windows.map((w) => w.hit));
  } catch (err) {
    throw gateFailure(err);
  }
  for (const [i, r] of results.entries()) if (!r.ok) rememberRefusal((windows[i] as Window).hit, r, askedAt);
  const refused = results.findIndex((r) => !r.ok);
  if (refused < 0) return;
  const w = windows[refused] as Window;
  throw addressRefusal(w.hit, results[refused] as Refused, w.level);
}

/**
 * The 429 of an address (or a visitor, or the whole tenant: `level`) over its limit, with its own
 * policy in the RateLimit fields.
 */
export function addressRefusal(
  { kind, windowMs }: Pick<AddressHit, "kind" | "windowMs">,
  result: Refused,
  level: Level = "address",
): AppError {
  const { what } = WINDOWS[kind];
  const policy = level === "address" ? WINDOWS[kind].policy : `${level}-${kind}s`;
  const wait = result.retryAfterSeconds;
  return new AppError("RATE_LIMITED", `too many ${what} ${WHOSE[level]}; retry in ${wait} s`, {
    headers: {
      "Retry-After": String(wait),
      // The address's own policy only: this refusal comes before admission, which knows the others.
      ...rateLimitFields([
        {
          level: policy,
          limit: result.limit,
          windowSeconds: windowMs / 1000,
          remaining: 0,
          resetSeconds: wait,
        },
      ]),
    },
    details: { level, limit: result.limit, remaining: 0, reset_seconds: wait },
  });
}
