/**
 * Operator accounts and their console sessions. A session is a random token in an HttpOnly cookie;
 * Postgres keeps only its SHA-256, so a session is revoked (sign-out, removal, "sign out
 * everywhere") the moment its row says so, in every isolate. Invitations and magic links are
 * one-use tokens stored the same way.
 */
import { and, asc, count, eq, gt, isNull, lte, sql } from "drizzle-orm";
import { hmacSha256Hex, randomToken, sha256Hex } from "../auth/keys";
import type { Cache } from "../cache/redis";
import type { Db } from "../db/client";
import { type OperatorRow, operatorSessions, operators, operatorTokens } from "../db/schema";
import { AppError } from "../errors";
import { type OpenSocket, takeOperatorSockets } from "../handoff/operator-sockets";
import { type Actor, audit, lockTenant, type Tx } from "../tenants/service";
import { hashPassword, PBKDF2_ITERATIONS, verifyPassword } from "./password";

export type OperatorRole = OperatorRow["role"];

/** Who is signed in, as the request path carries it. */
export interface OperatorIdentity {
  id: string;
  tenantId: string;
  email: string;
  name: string;
  role: OperatorRole;
  sessionId: string;
  /** Epoch ms at which the session ends by itself. */
  sessionExpiresAt: number;
}

export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
export const INVITE_TTL_MS = 7 * 24 * 60 * 60 * 1000;
export const MAGIC_TTL_MS = 15 * 60 * 1000;
/** Operators a tenant has at once (removed ones aside). */
export const MAX_OPERATORS = 200;
/** Invitations a tenant sends in INVITE_WINDOW_MS. */
export const MAX_INVITES_PER_DAY = 50;
const INVITE_WINDOW_MS = 24 * 60 * 60 * 1000;
/**
 * Failed sign-ins in a row from one address (an IPv6 address's /64) before the account refuses that
 * address for LOCK_MS (then five more tries). Other addresses still sign in: a stranger who knows an
 * operator's email cannot lock the operator out from one address.
 */
export const SIGN_IN_FAILURES = 5;
/**
 * Failed sign-ins in a row from any addresses before the account refuses everyone for LOCK_MS: the
 * bound on guessing spread over many addresses (each of which locks after SIGN_IN_FAILURES).
 */
export const ACCOUNT_SIGN_IN_FAILURES = 50;
export const LOCK_MS = 15 * 60 * 1000;
/** How long a run of failed sign-ins is remembered from its first failure, on either count. */
export const SIGN_IN_COUNT_MS = 24 * 60 * 60 * 1000;
/** An operator row's sign-in count and lock, cleared (a right password, a password set). */
const NO_FAILURES = { failedSignIns: 0, lockedUntil: null, failedUntil: null };

/** The audit log's name for an operator: their id and email, so the entry outlives a rename. */
export function operatorActor(op: Pick<OperatorIdentity, "id" | "email">, requestId: string): Actor {
  return { actor: `operator:${op.id} ${op.email}`, requestId };
}

/** The CSRF token of a session: derived from the cookie's secret, so only its holder's page can read it. */
export function csrfToken(sessionToken: string): Promise<string> {
  return hmacSha256Hex(sessionToken, "chatedge console csrf");
}

export function operatorOut(row: OperatorRow) {
  return {
    id: row.id,
    tenant_id: row.tenantId,
    email: row.email,
    name: row.name,
    role: row.role,
    status: row.removedAt
      ? ("removed" as const)
      : row.passwordHash
        ? ("active" as const)
        : ("invited" as const),
    created_at: row.createdAt.toISOString(),
  };
}

const normalEmail = (email: string) => email.trim().toLowerCase();

export async function listOperators(db: Db, tenantId: string): Promise<OperatorRow[]> {
  return db
    .select()
    .from(operators)
    .where(eq(operators.tenantId, tenantId))
    .orderBy(asc(operators.createdAt));
}

async function operatorOf(db: Db | Tx, tenantId: string, id: string): Promise<OperatorRow> {
  const [row] = await db
    .select()
    .from(operators)
    .where(and(eq(operators.tenantId, tenantId), eq(operators.id, id)))
    .limit(1);
  if (!row) throw new AppError("NOT_FOUND", `no operator ${id}`);
  return row;
}

/** A one-use token for `purpose`; the link carries the token, Postgres its hash. */
async function issueToken(
  db: Db | Tx,
  op: Pick<OperatorRow, "id" | "tenantId">,
  purpose: "invite" | "magic",
  ttlMs: number,
  now: number,
): Promise<string> {
  const token = randomToken(43);
  await db.insert(operatorTokens).values({
    id: await sha256Hex(token),
    operatorId: op.id,
    tenantId: op.tenantId,
    purpose,
    expiresAt: new Date(now + ttlMs),
  });
  return token;
}

/** Invites an operator: a row without a password and an invitation token to set one. */
export async function inviteOperator(
  db: Db,
  who: Actor,
  tenantId: string,
  input: { email: string; name: string; role: OperatorRole },
  now = Date.now(),
): Promise<{ row: OperatorRow; token: string }> {
  const email = normalEmail(input.email);
  const row = await db.transaction(async (tx) => {
    // Each invitation is an email from the platform's sender to an address the caller chooses, and
    // a row kept for the audit log: bounded per tenant, under the tenant's lock so the bounds hold.
    await lockTenant(tx, tenantId);
    const since = new Date(now - INVITE_WINDOW_MS);
    const [n] = await tx
      .select({
        live: sql<number>`count(*) filter (where ${operators.removedAt} is null)::int`,
        recent: sql<number>`count(*) filter (where ${operators.createdAt} > ${since.toISOString()}::timestamptz)::int`,
      })
      .from(operators)
      .where(eq(operators.tenantId, tenantId));
    if ((n?.live ?? 0) >= MAX_OPERATORS)
      throw new AppError("CONFLICT", `a tenant has at most ${MAX_OPERATORS} operators; remove one first`);
    if ((n?.recent ?? 0) >= MAX_INVITES_PER_DAY)
      throw new AppError("RATE_LIMITED", `a tenant invites at most ${MAX_INVITES_PER_DAY} operators a day`, {
        headers: { "Retry-After": String(INVITE_WINDOW_MS / 1000) },
      });
    const [created] = await tx
      .insert(operators)
      .values({ id: crypto.randomUUID(), tenantId, email, name: input.name, role: input.role })
      .onConflictDoNothing()
      .returning();
    if (!created) throw new AppError("CONFLICT", `an operator with email ${email} already exists`);
    await audit(tx, who, tenantId, "operator.invite", created.id, { email, role: input.role });
    return created;
  });
  return { row, token: await issueToken(db, row, "invite", INVITE_TTL_MS, now) };
}

/** Changes an operator's name or role; the last owner cannot stop being one. */
export async function updateOperator(
  db: Db,
  who: Actor,
  tenantId: string,
  id: string,
  patch: { name?: string; role?: OperatorRole },
): Promise<OperatorRow> {
  return db.transaction(async (tx) => {
    const current = await operatorOf(tx, tenantId, id);
    if (patch.role === "agent" && current.role === "owner") await keepAnOwner(tx, tenantId, id);
    const [row] = await tx
      .update(operators)
      .set({ ...(patch.name ? { name: patch.name } : {}), ...(patch.role ? { role: patch.role } : {}) })
      .where(and(eq(operators.tenantId, tenantId), eq(operators.id, id)))
      .returning();
    await audit(tx, who, tenantId, "operator.update", id, patch);
    return row as OperatorRow;
  });
}

async function keepAnOwner(db: Db | Tx, tenantId: string, leaving: string): Promise<void> {
  // Every live owner row locked, in one order, before the count: two owners demoting or removing
  // each other at once would each see the other still there and both go through, leaving none.
  // The second now waits for the first and then sees it gone.
  const owners = await db
    .select({ id: operators.id })
    .from(operators)
    .where(and(eq(operators.tenantId, tenantId), eq(operators.role, "owner"), isNull(operators.removedAt)))
    .orderBy(asc(operators.id))
    .for("update");
  // The platform admin and the tenant's secret keys can always add another owner; an operator
  // cannot lock everyone else out by demoting or removing the last one.
  if (!owners.some((o) => o.id !== leaving))
    throw new AppError("CONFLICT", "the tenant's last owner cannot be removed or made an agent");
}

/**
 * Removes an operator: no more sign-in, every session revoked; the row stays for the audit log.
 * Answers the live sockets the sessions may still hold, for `closeOperatorSockets`.
 */
export async function removeOperator(
  db: Db,
  who: Actor,
  tenantId: string,
  id: string,
): Promise<{ row: OperatorRow; sockets: OpenSocket[] }> {
  return db.transaction(async (tx) => {
    const current = await operatorOf(tx, tenantId, id);
    if (current.role === "owner" && !current.removedAt) await keepAnOwner(tx, tenantId, id);
    const [row] = await tx
      .update(operators)
      .set({ removedAt: sql`coalesce(${operators.removedAt}, now())` })
      .where(and(eq(operators.tenantId, tenantId), eq(operators.id, id)))
      .returning();
    const ended = await tx
      .update(operatorSessions)
      .set({ revokedAt: sql`now()` })
      .where(and(eq(operatorSessions.operatorId, id), isNull(operatorSessions.revokedAt)))
      .returning({ id: operatorSessions.id });
    await audit(tx, who, tenantId, "operator.remove", id, {});
    return {
      row: row as OperatorRow,
      sockets: await takeOperatorSockets(
        tx,
        ended.map((s) => s.id),
      ),
    };
  });
}

/**
 * Revokes every session of an operator ("sign out everywhere"); answers how many were live, and the
 * live sockets they may still hold, for `closeOperatorSockets`.
 */
export async function revokeSessions(
  db: Db,
  who: Actor,
  tenantId: string,
  id: string,
): Promise<{ revoked: number; sockets: OpenSocket[] }> {
  await operatorOf(db, tenantId, id);
  return db.transaction(async (tx) => {
    const revoked = await tx
      .update(operatorSessions)
      .set({ revokedAt: sql`now()` })
      .where(
        and(
          eq(operatorSessions.operatorId, id),
          isNull(operatorSessions.revokedAt),
          gt(operatorSessions.expiresAt, sql`now()`),
        ),
      )
      .returning({ id: operatorSessions.id });
    await audit(tx, who, tenantId, "operator.sessions.revoke", id, { sessions: revoked.length });
    return {
      revoked: revoked.length,
      sockets: await takeOperatorSockets(
        tx,
        revoked.map((s) => s.id),
      ),
    };
  });
}

/** A new session for a signed-in operator; the token goes into the cookie and nowhere else. */
async function startSession(db: Db, op: OperatorRow, now: number): Promise<string> {
  const token = randomToken(43);
  await db.insert(operatorSessions).values({
    id: await sha256Hex(token),
    operatorId: op.id,
    tenantId: op.tenantId,
    expiresAt: new Date(now + SESSION_TTL_MS),
  });
  return token;
}

async function findByEmail(db: Db, tenantId: string, email: string): Promise<OperatorRow | undefined> {
  const [row] = await db
    .select()
    .from(operators)
    .where(and(eq(operators.tenantId, tenantId), eq(operators.email, normalEmail(email))))
    .limit(1);
  return row;
}

export type SignIn =
  | { ok: true; operator: OperatorRow; token: string }
  | { ok: false; locked?: { ms: number; scope: "account" | "address" } };

/**
 * Email and password, from `address` (the caller's hashed address, src/auth/throttle.ts). Every
 * attempt is counted as a failure before its password is checked: first against the account from
 * this address, then against the account from anywhere. One that makes a count pass its limit is
 * refused unchecked, so a burst of attempts sent at once meets the same locks as attempts sent one
 * by one (counted after the check, they all passed before any was counted). A right password then
 * clears both counts. Every failure looks the same to the caller, an email that is no operator's
 * included: it locks after as many failures, for as long, else the lock itself would tell a prober
 * which emails are operators.
 */
export async function signIn(
  db: Db,
  cache: Cache,
  tenantId: string,
  email: string,
  password: string,
  address: string | undefined,
  now = Date.now(),
): Promise<SignIn> {
  const op = await findByEmail(db, tenantId, email);
  const locks = signInLocks(cache, tenantId, email, address ?? "unknown");
  const refused = (until: number, scope: "account" | "address"): SignIn => ({
    ok: false,
    locked: { ms: Math.max(until - now, 1000), scope },
  });
  // An account already locked is refused before the address's count, which its attempts then do
  // not add to. Redis is asked for every email, an operator's too: the same calls either way.
  const redisLock = await locks.unknownAccountLock(now);
  const accountLock = op ? (op.lockedUntil?.getTime() ?? 0) : redisLock;
  if (accountLock > now) return refused(accountLock, "account");
  const here = await locks.claimAddress(now);
  if (here !== undefined) return refused(here, "address");
  const everywhere = op ? await claimAccount(db, op.id, now) : await locks.claimUnknownAccount(now);
  if (everywhere !== undefined) return refused(everywhere, "account");
  const usable = op && !op.removedAt ? op.passwordHash : null;
  if (!(await verifyPassword(password, usable)) || !op) return { ok: false };
  const rehash = !op.passwordHash?.startsWith(`pbkdf2-sha256$${PBKDF2_ITERATIONS}$`);
  await db
    .update(operators)
    .set({ ...NO_FAILURES, ...(rehash ? { passwordHash: await hashPassword(password) } : {}) })
    .where(eq(operators.id, op.id));
  await locks.succeeded();
  return { ok: true, operator: op, token: await startSession(db, op, now) };
}

/**
 * Counts an attempt on an operator's account, from anywhere, as a failure (a success clears it):
 * the ACCOUNT_SIGN_IN_FAILURES-th locks the account for LOCK_MS. The count lives as an unknown
 * email's does in Redis (signInLocks): a day from the first failure of a run, or until the lock that
 * run reached ends, and then starts again; a count that lived longer would make the lock tell an
 * operator's email from one that is nobody's. One statement, which takes the row's lock, so
 * concurrent attempts are counted one after another and none passes a lock another has just set.
 * Undefined when the attempt may go on; else when the lock ends.
 */
async function claimAccount(db: Db, id: string, now: number): Promise<number | undefined> {
  const at = sql`${new Date(now).toISOString()}::timestamptz`;
  const lockEnd = sql`${new Date(now + LOCK_MS).toISOString()}::timestamptz`;
  const open = sql`(${operators.lockedUntil} is null or ${operators.lockedUntil} <= ${at})`;
  const forgotten = sql`(${operators.failedUntil} is null or ${operators.failedUntil} <= ${at})`;
  // Every expression reads the row as it was before this statement.
  const n = sql`(case when ${forgotten} then 1 else ${operators.failedSignIns} + 1 end)`;
  const locks = sql`${n} = ${ACCOUNT_SIGN_IN_FAILURES}`;
  const [counted] = await db
    .update(operators)
    .set({
      failedSignIns: n,
      failedUntil: sql`case when ${locks} then ${lockEnd}
        when ${forgotten} then ${new Date(now + SIGN_IN_COUNT_MS).toISOString()}::timestamptz
        else ${operators.failedUntil} end`,
      lockedUntil: sql`case when ${locks} then ${lockEnd} else ${operators.lockedUntil} end`,
    })
    .where(and(eq(operators.id, id), open))
    .returning({ id: operators.id });
  if (counted) return undefined;
  const [row] = await db
    .select({ lockedUntil: operators.lockedUntil })
    .from(operators)
    .where(eq(operators.id, id));
  return row?.lockedUntil?.getTime() ?? now + LOCK_MS;
}

/**
 * The sign-in counts kept in Redis, under hashes, expiring on their own: an account's attempts from
 * one address (every account's), and the account-wide ones of an email that is no operator of the
 * tenant (never in Postgres: nobody's row; an operator's are its row's). A count lives a day from its
 * first attempt; the attempt that reaches its limit makes it live LOCK_MS instead, and while it lives
 * at the limit or over, it is the lock. Without Redis nothing here is counted: an account then locks
 * only after ACCOUNT_SIGN_IN_FAILURES, and an unknown email never does.
 */
function signInLocks(cache: Cache, tenantId: string, email: string, address: string) {
  const who = `${tenantId}\n${normalEmail(email)}`;
  const keys = Promise.all([sha256Hex(who), sha256Hex(`${who}\n${address}`)]).then(([account, here]) => ({
    account: `ce:signin:account:${account}`,
    address: `ce:signin:address:${here}`,
  }));
  /** Counts an attempt under `key`; undefined when it may go on, else when the lock ends. */
  const claim = (key: string, limit: number, now: number) =>
    cache.run(undefined, async (r): Promise<number | undefined> => {
      const [n, , ttl] = await r
        .pipeline()
        .incr(key)
        .expire(key, SIGN_IN_COUNT_MS / 1000, { nx: true })
        .ttl(key)
        .exec<[number, number, number]>();
      const lockS = LOCK_MS / 1000;
      if (n === limit) await r.expire(key, lockS);
      if (n <= limit) return undefined;
      // The attempt that reached the limit shortens the count's life to the lock's; one that comes
      // before it did (or after it failed) does the same, and is never told to wait longer.
      if (ttl > lockS) await r.expire(key, lockS);
      return now + Math.min(Math.max(ttl, 1), lockS) * 1000;
    });
  return {
    /** Counts an attempt on the account from this address: at SIGN_IN_FAILURES it locks. */
    async claimAddress(now: number): Promise<number | undefined> {
      return claim((await keys).address, SIGN_IN_FAILURES, now);
    },
    /**
     * When an unknown email's account-wide lock ends (0: none), without counting; asked for every
     * email, so an operator's sign-in makes the same Redis calls.
     */
    async unknownAccountLock(now: number): Promise<number> {
      const key = (await keys).account;
      const [n, ttl] = await cache.run<[string | number | null, number]>([0, 0], (r) =>
        r.pipeline().get(key).ttl(key).exec<[string | number | null, number]>(),
      );
      return Number(n) >= ACCOUNT_SIGN_IN_FAILURES ? now + Math.max(ttl, 1) * 1000 : 0;
    },
    /** Counts an attempt on an unknown email's account, as an operator's row counts its own. */
    async claimUnknownAccount(now: number): Promise<number | undefined> {
      return claim((await keys).account, ACCOUNT_SIGN_IN_FAILURES, now);
    },
    /** A success starts this address's count again, as it does the account's. */
    async succeeded(): Promise<void> {
      const k = await keys;
      await cache.run(0, (r) => r.del(k.address));
    },
  };
}

/** Spends a one-use token; the operator it belongs to, or undefined when unknown, used or expired. */
async function spendToken(
  db: Db,
  token: string,
  purpose: "invite" | "magic",
  now: number,
): Promise<OperatorRow | undefined> {
  const [spent] = await db
    .update(operatorTokens)
    .set({ usedAt: new Date(now) })
    .where(
      and(
        eq(operatorTokens.id, await sha256Hex(token)),
        eq(operatorTokens.purpose, purpose),
        isNull(operatorTokens.usedAt),
        gt(operatorTokens.expiresAt, new Date(now)),
      ),
    )
    .returning({ operatorId: operatorTokens.operatorId });
  if (!spent) return undefined;
  const [op] = await db.select().from(operators).where(eq(operators.id, spent.operatorId)).limit(1);
  return op && !op.removedAt ? op : undefined;
}

/** Accepts an invitation: sets the password and signs in. */
export async function acceptInvite(
  db: Db,
  token: string,
  password: string,
  now = Date.now(),
): Promise<{ operator: OperatorRow; token: string } | undefined> {
  const op = await spendToken(db, token, "invite", now);
  if (!op) return undefined;
  const [row] = await db
    .update(operators)
    .set({ passwordHash: await hashPassword(password), ...NO_FAILURES })
    .where(eq(operators.id, op.id))
    .returning();
  const updated = row ?? op;
  return { operator: updated, token: await startSession(db, updated, now) };
}

/**
 * Magic links one operator may have open (unused, unexpired) at once. Anyone may ask for an
 * operator's link with the tenant's id and the operator's email, so this bounds what a script
 * asking in a loop makes: at most this many emails to the operator and rows in 15 minutes.
 */
export const MAX_OPEN_MAGIC_LINKS = 3;

/**
 * A magic sign-in token for an existing, active operator with fewer than MAX_OPEN_MAGIC_LINKS
 * open; undefined (and no token) otherwise. The operator's expired links are deleted first.
 */
export async function magicLinkToken(
  db: Db,
  tenantId: string,
  email: string,
  now = Date.now(),
): Promise<{ operator: OperatorRow; token: string } | undefined> {
  const op = await findByEmail(db, tenantId, email);
  if (!op || op.removedAt) return undefined;
  const token = await db.transaction(async (tx) => {
    // One operator's requests in turn, so concurrent ones cannot pass the count together.
    await tx.select({ id: operators.id }).from(operators).where(eq(operators.id, op.id)).for("update");
    const mine = and(eq(operatorTokens.operatorId, op.id), eq(operatorTokens.purpose, "magic"));
    await tx.delete(operatorTokens).where(and(mine, lte(operatorTokens.expiresAt, new Date(now))));
    const [open] = await tx
      .select({ n: count() })
      .from(operatorTokens)
      .where(and(mine, isNull(operatorTokens.usedAt)));
    if ((open?.n ?? 0) >= MAX_OPEN_MAGIC_LINKS) return undefined;
    return issueToken(tx, op, "magic", MAGIC_TTL_MS, now);
  });
  return token === undefined ? undefined : { operator: op, token };
}

/** Redeems a magic link: a session, or undefined when the link is unknown, used or expired. */
export async function redeemMagicLink(
  db: Db,
  token: string,
  now = Date.now(),
): Promise<{ operator: OperatorRow; token: string } | undefined> {
  const op = await spendToken(db, token, "magic", now);
  return op ? { operator: op, token: await startSession(db, op, now) } : undefined;
}

/** The live session behind a cookie's token, with its operator; undefined when none. */
export async function sessionOf(
  db: Db,
  token: string,
  now = Date.now(),
): Promise<OperatorIdentity | undefined> {
  const id = await sha256Hex(token);
  const [row] = await db
    .select({ op: operators, sessionId: operatorSessions.id, sessionExpiresAt: operatorSessions.expiresAt })
    .from(operatorSessions)
    .innerJoin(operators, eq(operators.id, operatorSessions.operatorId))
    .where(
      and(
        eq(operatorSessions.id, id),
        isNull(operatorSessions.revokedAt),
        gt(operatorSessions.expiresAt, new Date(now)),
        isNull(operators.removedAt),
      ),
    )
    .limit(1);
  if (!row) return undefined;
  const { op } = row;
  return {
    id: op.id,
    tenantId: op.tenantId,
    email: op.email,
    name: op.name,
    role: op.role,
    sessionId: row.sessionId,
    sessionExpiresAt: row.sessionExpiresAt.getTime(),
  };
}

/** Ends one session (sign-out); answers the live sockets it may still hold, for `closeOperatorSockets`. */
export async function endSession(db: Db, sessionId: string): Promise<OpenSocket[]> {
  return db.transaction(async (tx) => {
    await tx
      .update(operatorSessions)
      .set({ revokedAt: sql`now()` })
      .where(eq(operatorSessions.id, sessionId));
    return takeOperatorSockets(tx, [sessionId]);
  });
}
