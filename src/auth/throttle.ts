import { IsolateCache } from "../cache/isolate";
import { AppError } from "../errors";
import type { Services } from "../services";
import { clientIp, ipHash } from "./client-ip";

/** Failed key attempts one address may make per minute before every attempt from it is refused. */
export const AUTH_FAILURES_PER_MINUTE = 20;
const WINDOW_MS = 60_000;

// Per isolate, bounded: addresses over the limit (refused here without a Redis call) and the
// failures counted here (the count when Redis is not configured or down).
const blocked = new IsolateCache<number>(10_000, WINDOW_MS);
const failures = new IsolateCache<number>(10_000, WINDOW_MS);

const windowOf = (now: number) => Math.floor(now / WINDOW_MS);
/** The Redis counter of an address's failures in minute `w`. */
const sharedKey = (ip: string, w: number) => `ce:authfail:${ip}:${w}`;

function refusal(until: number, now: number): AppError {
  const seconds = Math.max(1, Math.ceil((until - now) / 1000));
  return new AppError(
    "RATE_LIMITED",
    `too many sign-in attempts or failed API keys from this address; retry in ${seconds} s`,
    { headers: { "Retry-After": String(seconds) } },
  );
}

/**
 * The caller's address as this throttle counts it (its keyed hash, src/auth/client-ip.ts);
 * undefined where nothing reports one (tests that call the worker directly), and then nothing is
 * counted.
 */
export async function addressOf(svc: Services, headers: Headers): Promise<string | undefined> {
  const address = clientIp(headers);
  return address === "unknown" ? undefined : ipHash(svc.env, address);
}

/** `addressOf`, refused at once (the 429 thrown) while the address is over its limit this minute. */
export async function admittedAddress(svc: Services, headers: Headers): Promise<string | undefined> {
  const ip = await addressOf(svc, headers);
  const over = throttled(ip);
  if (over) throw over;
  return ip;
}

/** The 429 for an address over its failed-attempt limit this minute; undefined while it is not. */
export function throttled(ip: string | undefined, now = Date.now()): AppError | undefined {
  if (ip === undefined) return undefined;
  const until = blocked.get(ip, now);
  return until !== undefined && until > now ? refusal(until, now) : undefined;
}

/**
 * Counts a failed key attempt (in Redis across isolates, else in this isolate) and answers the error
 * to throw: the caller's own, or a 429 once the address is over its limit. The limit holds over a
 * sliding minute: this minute's failures count whole, and the previous minute's in proportion to
 * how much of it is still inside the last 60 s. (Whole minutes counted apart let a burst across the
 * turn of a minute make twice the limit's attempts within seconds.)
 */
export async function failedAttempt(svc: Services, ip: string | undefined, err: AppError, now = Date.now()) {
  return (await countAttempt(svc, ip, now)) ?? err;
}

/**
 * Counts an attempt against the address as `failedAttempt` does: the 429 once the address is over
 * its limit, else undefined. For requests whose outcome the caller is not told (a magic link is
 * 202 whether or not the account exists), so every one counts and the limit tells nothing either.
 */
export async function countAttempt(
  svc: Services,
  ip: string | undefined,
  now = Date.now(),
): Promise<AppError | undefined> {
  if (ip === undefined) return undefined;
  const w = windowOf(now);
  const local = (failures.get(`${ip}:${w}`, now) ?? 0) + 1;
  failures.set(`${ip}:${w}`, local, now);
  const key = sharedKey(ip, w);
  const [shared, sharedBefore] = await svc.cache.run<[number, number]>([0, 0], async (r) => {
    const [count, , before] = await r
      .pipeline()
      .incr(key)
      .expire(key, 120)
      .get(sharedKey(ip, w - 1))
      .exec<[number, number, unknown]>();
    return [count, Number(before ?? 0) || 0];
  });
  const before = Math.max(failures.get(`${ip}:${w - 1}`, now) ?? 0, sharedBefore);
  const stillInside = 1 - (now - w * WINDOW_MS) / WINDOW_MS;
  if (Math.max(local, shared) + before * stillInside <= AUTH_FAILURES_PER_MINUTE) return undefined;
  const until = (w + 1) * WINDOW_MS;
  blocked.set(ip, until, now);
  return refusal(until, now);
}
