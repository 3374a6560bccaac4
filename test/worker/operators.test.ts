import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../src/auth/keys";
import { AUTH_FAILURES_PER_MINUTE } from "../../src/auth/throttle";
import worker from "../../src/index";
import {
  ACCOUNT_SIGN_IN_FAILURES,
  MAGIC_TTL_MS,
  MAX_INVITES_PER_DAY,
  MAX_OPEN_MAGIC_LINKS,
  MAX_OPERATORS,
  magicLinkToken,
  SIGN_IN_FAILURES,
} from "../../src/operators/service";
import { services } from "./experiments/helpers";
import { admin, BASE, call, createKey, createTenant, envelope, query, send, sql, uniqueId } from "./helpers";

const PASSWORD = "correct horse battery staple";

interface SessionBody {
  operator: { id: string; tenant_id: string; email: string; name: string; role: string };
  csrf_token: string;
}

/** A JSON request as the console's page sends it: the session cookie, and the CSRF header on writes. */
function consoleSend(
  method: string,
  path: string,
  session?: { cookie: string; csrf?: string },
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const h: Record<string, string> = { ...headers };
  if (session) h.cookie = session.cookie;
  if (session?.csrf) h["x-csrf-token"] = session.csrf;
  if (body !== undefined) h["content-type"] = "application/json";
  return call(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** The `name=value` of the session cookie a response sets, with its attributes checked. */
function sessionCookie(res: Response): string {
  const set = res.headers.get("set-cookie") ?? "";
  expect(set).toMatch(/^__Host-chatedge_session=[A-Za-z0-9]{43};/);
  for (const attr of ["HttpOnly", "Secure", "SameSite=Strict", "Path=/", "Max-Age=43200"])
    expect(set).toContain(attr);
  expect(set).not.toContain("Domain=");
  return set.split(";")[0] as string;
}

/** Invites an operator through the admin API and accepts the invitation: a signed-in console session. */
async function operator(tenantId: string, role: "owner" | "agent", email = `${uniqueId("op")}@example.com`) {
  const invited = await admin("POST", `/tenants/${tenantId}/operators`, { email, name: `Op ${role}`, role });
  expect(invited.status).toBe(201);
  const { operator: op, invite_url } = (await invited.json()) as {
    operator: { id: string };
    invite_url: string;
  };
  const token = invite_url.split("#invite=")[1] as string;
  const accepted = await consoleSend("POST", "/operator/invitations/accept", undefined, {
    token,
    password: PASSWORD,
  });
  expect(accepted.status).toBe(200);
  const cookie = sessionCookie(accepted);
  const body = (await accepted.json()) as SessionBody;
  return { id: op.id, email, token, session: { cookie, csrf: body.csrf_token }, body };
}

/** A password sign-in from `ip` (a fresh address unless given). */
function signInFrom(tenantId: string, email: string, password: string, ip = `192.0.2.80-${uniqueId("ip")}`) {
  return consoleSend(
    "POST",
    "/operator/session",
    undefined,
    { tenant_id: tenantId, email, password },
    { "cf-connecting-ip": ip },
  );
}

/** The failures counted on an operator's row. */
async function failedSignIns(operatorId: string): Promise<number | undefined> {
  const [row] = await query<{ failed_sign_ins: number }>(
    sql`select failed_sign_ins from operators where id = ${operatorId}`,
  );
  return row?.failed_sign_ins;
}

/** An operator's magic links not yet used or expired. */
async function openMagicLinks(operatorId: string): Promise<number | undefined> {
  const [row] = await query<{ n: number }>(
    sql`select count(*)::int as n from operator_tokens where operator_id = ${operatorId} and purpose = 'magic'`,
  );
  return row?.n;
}

describe("operator accounts and console sessions", () => {
  it("an invitation is accepted once, sets a strict HttpOnly cookie, and the session knows who it is", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    expect(owner.body.operator).toMatchObject({ tenant_id, email: owner.email, role: "owner" });
    const me = await consoleSend("GET", "/operator/session", { cookie: owner.session.cookie });
    expect(me.status).toBe(200);
    expect(me.headers.get("cache-control")).toBe("no-store");
    expect(((await me.json()) as SessionBody).csrf_token).toBe(owner.session.csrf);
    // The token is spent: a second use (a forwarded email, a link scanner) gets nothing.
    const again = await consoleSend("POST", "/operator/invitations/accept", undefined, {
      token: owner.token,
      password: PASSWORD,
    });
    expect(again.status).toBe(401);
    // Only the token's hash is stored.
    const stored = await query<{ n: number }>(
      sql`select count(*)::int as n from operator_tokens where id = ${owner.token}`,
    );
    expect(stored[0]?.n).toBe(0);
    const list = await admin("GET", `/tenants/${tenant_id}/operators`);
    expect(((await list.json()) as { data: { status: string }[] }).data.map((o) => o.status)).toEqual([
      "active",
    ]);
  });

  it("refuses a short password, a malformed token, no cookie and a made-up cookie", async () => {
    const { tenant_id } = await createTenant();
    const invited = await admin("POST", `/tenants/${tenant_id}/operators`, {
      email: "short@example.com",
      name: "Short",
      role: "owner",
    });
    const token = ((await invited.json()) as { invite_url: string }).invite_url.split("#invite=")[1];
    const short = await consoleSend("POST", "/operator/invitations/accept", undefined, {
      token,
      password: "tooshort",
    });
    expect(short.status).toBe(400);
    expect((await envelope(short)).code).toBe("VALIDATION_FAILED");
    const bad = await consoleSend("POST", "/operator/invitations/accept", undefined, {
      token: "x",
      password: PASSWORD,
    });
    expect(bad.status).toBe(400);
    // The refused attempts spent nothing: the invitation still works.
    expect(
      (await consoleSend("POST", "/operator/invitations/accept", undefined, { token, password: PASSWORD }))
        .status,
    ).toBe(200);
    expect((await consoleSend("GET", "/operator/session")).status).toBe(401);
    const forged = await consoleSend("GET", "/operator/session", {
      cookie: `__Host-chatedge_session=${"A".repeat(43)}`,
    });
    expect(forged.status).toBe(401);
  });

  it("signs in with email and password; a wrong password and an unknown email look the same; five in a row lock", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const ok = await consoleSend("POST", "/operator/session", undefined, {
      tenant_id,
      email: owner.email.toUpperCase(),
      password: PASSWORD,
    });
    expect(ok.status).toBe(200);
    sessionCookie(ok);
    const wrong = await consoleSend("POST", "/operator/session", undefined, {
      tenant_id,
      email: owner.email,
      password: "nope",
    });
    const unknown = await consoleSend("POST", "/operator/session", undefined, {
      tenant_id,
      email: "nobody@example.com",
      password: PASSWORD,
    });
    expect([wrong.status, unknown.status]).toEqual([401, 401]);
    expect((await envelope(wrong)).message).toBe((await envelope(unknown)).message);
    expect(wrong.headers.get("set-cookie")).toBeNull();
    for (let i = 0; i < 4; i++) {
      const r = await consoleSend("POST", "/operator/session", undefined, {
        tenant_id,
        email: owner.email,
        password: `nope${i}`,
      });
      expect(r.status).toBe(401);
    }
    // Five failures in a row: even the right password is refused here until the lock ends.
    const locked = await consoleSend("POST", "/operator/session", undefined, {
      tenant_id,
      email: owner.email,
      password: PASSWORD,
    });
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get("retry-after"))).toBeGreaterThan(800);
    expect((await envelope(locked)).message).toContain("for this account from this network");
    const [row] = await query<{ failed_sign_ins: number }>(
      sql`select failed_sign_ins from operators where id = ${owner.id}`,
    );
    expect(row?.failed_sign_ins).toBe(5);
    // The lock is this address's: from another, the operator signs in, and the count starts again.
    expect((await signInFrom(tenant_id, owner.email, PASSWORD)).status).toBe(200);
    expect(await failedSignIns(owner.id)).toBe(0);
  });

  it("a stranger's wrong passwords lock an account for their address only; fifty from anywhere lock it; an unknown email locks alike", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const address = () => `192.0.2.78-${uniqueId("ip")}`;
    const attempt = (email: string, password: string, from: string) =>
      consoleSend(
        "POST",
        "/operator/session",
        undefined,
        { tenant_id, email, password },
        { "cf-connecting-ip": from },
      );
    // Five wrong passwords from one address, for the owner and for an email that is nobody's.
    const stranger = address();
    const nobody = `${uniqueId("nobody")}@example.com`;
    for (let i = 0; i < SIGN_IN_FAILURES; i++) {
      expect((await attempt(owner.email, `nope${i}`, stranger)).status).toBe(401);
      expect((await attempt(nobody, `nope${i}`, stranger)).status).toBe(401);
    }
    // Both now refuse that address, alike: the same status, message and wait; so the lock tells nothing.
    const real = await attempt(owner.email, PASSWORD, stranger);
    const made = await attempt(nobody.toUpperCase(), PASSWORD, stranger);
    expect([real.status, made.status]).toEqual([429, 429]);
    const [a, b] = [await envelope(real), await envelope(made)];
    expect(a.message.replace(/\d+ s$/, "")).toBe(b.message.replace(/\d+ s$/, ""));
    expect(a.message).toContain("for this account from this network");
    for (const r of [real, made]) expect(Number(r.headers.get("retry-after"))).toBeGreaterThan(800);
    // Attempts on a locked account count against the address: the 21st is the address's 429, and
    // then even another account's right password waits there.
    for (let i = 2 * SIGN_IN_FAILURES + 2; i < AUTH_FAILURES_PER_MINUTE; i++)
      expect((await attempt(owner.email, PASSWORD, stranger)).status).toBe(429);
    const over = await attempt(owner.email, PASSWORD, stranger);
    expect(over.status).toBe(429);
    expect((await envelope(over)).message).toContain("from this address");
    const other = await operator(tenant_id, "agent");
    expect((await attempt(other.email, PASSWORD, stranger)).status).toBe(429);
    // The stranger did not lock the operator out: from anywhere else they sign in.
    expect((await attempt(owner.email, PASSWORD, address())).status).toBe(200);
    // Guessing spread over many addresses, five from each: ACCOUNT_SIGN_IN_FAILURES in a row lock the
    // account for everyone, and an unknown email alike.
    const nobody2 = `${uniqueId("nobody")}@example.com`;
    for (let n = 0; n < ACCOUNT_SIGN_IN_FAILURES / SIGN_IN_FAILURES; n++) {
      const from = address();
      for (let i = 0; i < SIGN_IN_FAILURES; i++) {
        expect((await attempt(other.email, `nope${n}-${i}`, from)).status).toBe(401);
        expect((await attempt(nobody2, `nope${n}-${i}`, from)).status).toBe(401);
      }
    }
    const fresh = address();
    const [realAll, madeAll] = [
      await attempt(other.email, PASSWORD, fresh),
      await attempt(nobody2, PASSWORD, fresh),
    ];
    expect([realAll.status, madeAll.status]).toEqual([429, 429]);
    const [c, d] = [await envelope(realAll), await envelope(madeAll)];
    expect(c.message.replace(/\d+ s$/, "")).toBe(d.message.replace(/\d+ s$/, ""));
    expect(c.message).toMatch(/for this account; retry in \d+ s$/);
  });

  it("a burst of sign-ins sent at once meets the same locks: five are checked, the rest refused unchecked", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const nobody = `${uniqueId("nobody")}@example.com`;
    const BURST = 3 * SIGN_IN_FAILURES;
    for (const email of [owner.email, nobody]) {
      // Each email from an address of its own: the address's own limit (AUTH_FAILURES_PER_MINUTE)
      // is not what this is about.
      const from = `192.0.2.79-${uniqueId("ip")}`;
      const answers = await Promise.all(
        Array.from({ length: BURST }, (_, i) => signInFrom(tenant_id, email, `nope${i}`, from)),
      );
      const statuses = answers.map((r) => r.status).sort();
      expect(statuses).toEqual([
        ...Array(SIGN_IN_FAILURES).fill(401),
        ...Array(BURST - SIGN_IN_FAILURES).fill(429),
      ]);
      for (const r of answers.filter((a) => a.status === 429))
        expect((await envelope(r)).message).toContain("for this account from this network");
    }
    // The account counted the five it checked, not the burst.
    expect(await failedSignIns(owner.id)).toBe(SIGN_IN_FAILURES);
    // The right password, from elsewhere, still signs in, and clears the count.
    expect((await signInFrom(tenant_id, owner.email, PASSWORD)).status).toBe(200);
    expect(await failedSignIns(owner.id)).toBe(0);
  });

  it("a burst from many addresses at once: fifty are checked, then the account is locked for everyone", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const nobody = `${uniqueId("nobody")}@example.com`;
    const BURST = ACCOUNT_SIGN_IN_FAILURES + 10;
    for (const email of [owner.email, nobody]) {
      const answers = await Promise.all(
        Array.from({ length: BURST }, (_, i) => signInFrom(tenant_id, email, `nope${i}`)),
      );
      expect(answers.filter((r) => r.status === 401)).toHaveLength(ACCOUNT_SIGN_IN_FAILURES);
      const refused = answers.filter((r) => r.status === 429);
      expect(refused).toHaveLength(BURST - ACCOUNT_SIGN_IN_FAILURES);
      for (const r of refused)
        expect((await envelope(r)).message).toMatch(/for this account; retry in \d+ s$/);
    }
  });

  it("a run of failures is forgotten a day after it began, an operator's as an unknown email's", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const nobody = `${uniqueId("nobody")}@example.com`;
    // One short of the lock, each from an address of its own.
    for (let i = 0; i < ACCOUNT_SIGN_IN_FAILURES - 1; i++) {
      expect((await signInFrom(tenant_id, owner.email, `nope${i}`)).status).toBe(401);
      expect((await signInFrom(tenant_id, nobody, `nope${i}`)).status).toBe(401);
    }
    expect(await failedSignIns(owner.id)).toBe(ACCOUNT_SIGN_IN_FAILURES - 1);
    // A day on: the row's count and the Redis count end alike (the Redis one is made to end now).
    await query(sql`update operators set failed_until = now() - interval '1 second' where id = ${owner.id}`);
    const svc = services();
    const key = `ce:signin:account:${await sha256Hex(`${tenant_id}\n${nobody}`)}`;
    expect(await svc.cache.run(0, (r) => r.expire(key, 1))).toBe(1);
    await new Promise((r) => setTimeout(r, 1_100));
    // The next failure starts a new run on both: neither locks, and the right password signs in.
    expect((await signInFrom(tenant_id, owner.email, "nope-again")).status).toBe(401);
    expect((await signInFrom(tenant_id, nobody, "nope-again")).status).toBe(401);
    expect(await failedSignIns(owner.id)).toBe(1);
    expect((await signInFrom(tenant_id, owner.email, PASSWORD)).status).toBe(200);
    expect((await signInFrom(tenant_id, nobody, PASSWORD)).status).toBe(401);
    // And a run that reached the lock is forgotten when the lock ends: one failure after it locks nothing.
    for (let i = 0; i < ACCOUNT_SIGN_IN_FAILURES; i++)
      expect((await signInFrom(tenant_id, owner.email, `nope${i}`)).status).toBe(401);
    expect((await signInFrom(tenant_id, owner.email, PASSWORD)).status).toBe(429);
    await query(
      sql`update operators set locked_until = now() - interval '1 second', failed_until = now() - interval '1 second' where id = ${owner.id}`,
    );
    expect((await signInFrom(tenant_id, owner.email, "nope-after")).status).toBe(401);
    expect(await failedSignIns(owner.id)).toBe(1);
    expect((await signInFrom(tenant_id, owner.email, PASSWORD)).status).toBe(200);
  });

  it("refuses a sign-in posted from another origin (login CSRF)", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const res = await consoleSend(
      "POST",
      "/operator/session",
      undefined,
      { tenant_id, email: owner.email, password: PASSWORD },
      { origin: "https://evil.example" },
    );
    expect(res.status).toBe(403);
    expect(res.headers.get("set-cookie")).toBeNull();
  });

  it("runs the tenant's routes under /operator: owners write with the CSRF header, agents only read, the audit log names the operator", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const agent = await operator(tenant_id, "agent");
    for (const who of [owner, agent]) {
      const usage = await consoleSend("GET", "/operator/usage", { cookie: who.session.cookie });
      expect(usage.status).toBe(200);
    }
    const invite = { email: "new@example.com", name: "New", role: "agent" };
    // No CSRF header: refused, nothing written.
    const noCsrf = await consoleSend("POST", "/operator/operators", { cookie: owner.session.cookie }, invite);
    expect(noCsrf.status).toBe(403);
    expect((await envelope(noCsrf)).message).toContain("X-CSRF-Token");
    const wrongCsrf = await consoleSend(
      "POST",
      "/operator/operators",
      { cookie: owner.session.cookie, csrf: agent.session.csrf },
      invite,
    );
    expect(wrongCsrf.status).toBe(403);
    const byAgent = await consoleSend("POST", "/operator/operators", agent.session, invite);
    expect(byAgent.status).toBe(403);
    expect((await envelope(byAgent)).message).toContain("owner");
    const byOwner = await consoleSend("POST", "/operator/operators", owner.session, invite);
    expect(byOwner.status).toBe(201);
    const audit = await query<{ actor: string; action: string }>(
      sql`select actor, action from audit_log where tenant_id = ${tenant_id} order by id`,
    );
    expect(audit.map((a) => a.action)).toEqual([
      "tenant.create",
      "operator.invite",
      "operator.invite",
      "operator.invite",
    ]);
    expect(audit.at(-1)?.actor).toBe(`operator:${owner.id} ${owner.email}`);
    expect(audit[1]?.actor).toBe("admin");
  });

  it("keeps an operator inside their tenant", async () => {
    const a = await createTenant();
    const b = await createTenant();
    const ownerA = await operator(a.tenant_id, "owner");
    const ownerB = await operator(b.tenant_id, "owner");
    // Another tenant's operator id is not found through A's session.
    for (const [method, path] of [
      ["PATCH", `/operator/operators/${ownerB.id}`],
      ["DELETE", `/operator/operators/${ownerB.id}`],
      ["DELETE", `/operator/operators/${ownerB.id}/sessions`],
    ] as const) {
      const res = await consoleSend(
        method,
        path,
        ownerA.session,
        method === "PATCH" ? { name: "Mallory" } : undefined,
      );
      expect(res.status, path).toBe(404);
    }
    const list = await consoleSend("GET", "/operator/operators", ownerA.session);
    expect(((await list.json()) as { data: { id: string }[] }).data.map((o) => o.id)).toEqual([ownerA.id]);
    // The session is not a key: the tenant API and the admin API refuse it.
    expect((await consoleSend("GET", "/v1/usage", ownerA.session)).status).toBe(401);
    expect((await consoleSend("GET", `/admin/tenants/${a.tenant_id}/usage`, ownerA.session)).status).toBe(
      401,
    );
    // B's tenant key cannot act on A's operators.
    const keyB = await createKey(b.tenant_id);
    expect((await send("DELETE", `/v1/operators/${ownerA.id}`, keyB.key)).status).toBe(404);
    expect((await consoleSend("GET", "/operator/session", ownerA.session)).status).toBe(200);
  });

  it("ends sessions at once: sign-out, sign out everywhere, removal; a tenant keeps its last owner", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const agent = await operator(tenant_id, "agent");
    const out = await consoleSend("DELETE", "/operator/session", owner.session);
    expect(out.status).toBe(204);
    expect(out.headers.get("set-cookie")).toContain("Max-Age=0");
    expect((await consoleSend("GET", "/operator/session", owner.session)).status).toBe(401);

    const again = await consoleSend("POST", "/operator/session", undefined, {
      tenant_id,
      email: owner.email,
      password: PASSWORD,
    });
    const session = { cookie: sessionCookie(again), csrf: ((await again.json()) as SessionBody).csrf_token };
    const revoked = await admin("DELETE", `/tenants/${tenant_id}/operators/${agent.id}/sessions`);
    expect(await revoked.json()).toEqual({ revoked: 1 });
    expect((await consoleSend("GET", "/operator/session", agent.session)).status).toBe(401);

    const demote = await consoleSend("PATCH", `/operator/operators/${owner.id}`, session, { role: "agent" });
    expect(demote.status).toBe(409);
    const promote = await consoleSend("PATCH", `/operator/operators/${agent.id}`, session, { role: "owner" });
    expect(promote.status).toBe(200);
    const removed = await consoleSend("DELETE", `/operator/operators/${owner.id}`, session);
    expect(removed.status).toBe(200);
    expect(((await removed.json()) as { status: string }).status).toBe("removed");
    // Removing oneself ends one's own session too; signing in again is refused.
    expect((await consoleSend("GET", "/operator/session", session)).status).toBe(401);
    const after = await consoleSend("POST", "/operator/session", undefined, {
      tenant_id,
      email: owner.email,
      password: PASSWORD,
    });
    expect(after.status).toBe(401);
  });

  it("an agent signs itself out everywhere, and no one else", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const agent = await operator(tenant_id, "agent");
    // A second session of the agent's, as on another computer.
    const other = await consoleSend("POST", "/operator/session", undefined, {
      tenant_id,
      email: agent.email,
      password: PASSWORD,
    });
    const elsewhere = { cookie: sessionCookie(other) };
    const theirs = await consoleSend("DELETE", `/operator/operators/${owner.id}/sessions`, agent.session);
    expect(theirs.status).toBe(403);
    expect((await consoleSend("GET", "/operator/session", owner.session)).status).toBe(200);
    const mine = await consoleSend("DELETE", `/operator/operators/${agent.id}/sessions`, agent.session);
    expect(mine.status).toBe(200);
    expect(await mine.json()).toEqual({ revoked: 2 });
    for (const s of [agent.session, elsewhere])
      expect((await consoleSend("GET", "/operator/session", s)).status).toBe(401);
  });

  it("magic links: the same answer whoever asks, one use, and a deactivated tenant's operators are refused", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    for (const email of [owner.email, "nobody@example.com"]) {
      const res = await consoleSend("POST", "/operator/magic-link", undefined, { tenant_id, email });
      expect(res.status).toBe(202);
    }
    // The link is made after the answer.
    await expect.poll(() => openMagicLinks(owner.id), { timeout: 5_000 }).toBe(1);
    const issued = await magicLinkToken(services().dbh.db, tenant_id, owner.email);
    expect(await magicLinkToken(services().dbh.db, tenant_id, "nobody@example.com")).toBeUndefined();
    const token = issued?.token as string;
    const redeemed = await consoleSend("POST", "/operator/magic-link/redeem", undefined, { token });
    expect(redeemed.status).toBe(200);
    const cookie = sessionCookie(redeemed);
    expect((await consoleSend("POST", "/operator/magic-link/redeem", undefined, { token })).status).toBe(401);

    await admin("DELETE", `/tenants/${tenant_id}`);
    expect((await consoleSend("GET", "/operator/usage", { cookie })).status).toBe(403);
  });

  it("magic links asked for in a loop: three open at once per operator, and every ask counts against the address", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const openLinks = () => openMagicLinks(owner.id);
    // A script on several addresses (so no address limit binds) asks for the owner's link ten times.
    for (let i = 0; i < 10; i++) {
      const res = await consoleSend(
        "POST",
        "/operator/magic-link",
        undefined,
        { tenant_id, email: owner.email },
        { "cf-connecting-ip": `192.0.2.${i}-${uniqueId("ip")}` },
      );
      expect(res.status).toBe(202);
    }
    // Three links were made (three emails in production), not ten; the rest were answered alike.
    // They are made after the answers: wait for the three, then for the other seven to find them.
    await expect.poll(openLinks, { timeout: 5_000 }).toBe(MAX_OPEN_MAGIC_LINKS);
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await openLinks()).toBe(MAX_OPEN_MAGIC_LINKS);
    expect(await magicLinkToken(services().dbh.db, tenant_id, owner.email)).toBeUndefined();
    // Once they expire, they are deleted and a new one can be made.
    const later = Date.now() + MAGIC_TTL_MS + 1_000;
    expect(await magicLinkToken(services().dbh.db, tenant_id, owner.email, later)).toBeDefined();
    expect(await openLinks()).toBe(1);

    // From one address every ask counts, for an account that exists or not: the 21st is refused.
    const ip = `192.0.2.99-${uniqueId("ip")}`;
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) {
      const email = i % 2 ? owner.email : `${uniqueId("nobody")}@example.com`;
      const res = await consoleSend(
        "POST",
        "/operator/magic-link",
        undefined,
        { tenant_id, email },
        {
          "cf-connecting-ip": ip,
        },
      );
      expect(res.status, `ask ${i + 1}`).toBe(202);
    }
    const over = await consoleSend(
      "POST",
      "/operator/magic-link",
      undefined,
      { tenant_id, email: owner.email },
      {
        "cf-connecting-ip": ip,
      },
    );
    expect(over.status).toBe(429);
    expect((await envelope(over)).message).toContain("sign-in attempts");
    // Password sign-in from that address waits too; another address does not.
    const signIn = (address: string) =>
      consoleSend(
        "POST",
        "/operator/session",
        undefined,
        { tenant_id, email: owner.email, password: PASSWORD },
        {
          "cf-connecting-ip": address,
        },
      );
    expect((await signIn(ip)).status).toBe(429);
    expect((await signIn(`192.0.2.98-${uniqueId("ip")}`)).status).toBe(200);
  });

  it("made-up session cookies count against the address: the 21st from it is refused before any lookup", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const ip = `192.0.2.77-${uniqueId("ip")}`;
    const from = (address: string) => ({ "cf-connecting-ip": address });
    const forged = (i: number) => ({
      cookie: `__Host-chatedge_session=${i % 2 ? "x".repeat(43) : `bad-${i}`}`,
    });
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++) {
      const res = await consoleSend("GET", "/operator/session", forged(i), undefined, from(ip));
      expect(res.status, `guess ${i + 1}`).toBe(401);
    }
    const over = await consoleSend("GET", "/operator/session", forged(0), undefined, from(ip));
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    // The address waits, a real session included (its cookie would need a lookup too); others do not.
    expect((await consoleSend("GET", "/operator/session", owner.session, undefined, from(ip))).status).toBe(
      429,
    );
    const elsewhere = from(`192.0.2.78-${uniqueId("ip")}`);
    expect((await consoleSend("GET", "/operator/session", owner.session, undefined, elsewhere)).status).toBe(
      200,
    );
    expect((await consoleSend("GET", "/operator/session", forged(1), undefined, elsewhere)).status).toBe(401);
    // No cookie at all is a signed-out console, not a guess: it is not counted.
    const fresh = from(`192.0.2.79-${uniqueId("ip")}`);
    for (let i = 0; i < AUTH_FAILURES_PER_MINUTE + 5; i++)
      expect((await consoleSend("GET", "/operator/session", undefined, undefined, fresh)).status).toBe(401);
  });

  it("validates invitations: a bad email or role is 400, a duplicate email 409, in the envelope", async () => {
    const { tenant_id } = await createTenant();
    const key = await createKey(tenant_id);
    const ok = await send("POST", "/v1/operators", key.key, {
      email: "Dup@Example.com",
      name: "A",
      role: "owner",
    });
    expect(ok.status).toBe(201);
    const dup = await send("POST", "/v1/operators", key.key, {
      email: "dup@example.com",
      name: "B",
      role: "agent",
    });
    expect(dup.status).toBe(409);
    for (const body of [
      { email: "not an email", name: "A", role: "owner" },
      { email: "a@example.com", name: "A", role: "admin" },
      { email: "a@example.com", name: "", role: "agent" },
    ]) {
      const res = await send("POST", "/v1/operators", key.key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect((await envelope(res)).code).toBe("VALIDATION_FAILED");
    }
    const count = await query<{ n: number }>(
      sql`select count(*)::int as n from operators where tenant_id = ${tenant_id}`,
    );
    expect(count[0]?.n).toBe(1);
  });

  it("a magic link is made after the answer: the 202 needs no database, whoever's email it names", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    // With Postgres out of reach, the answer is the same 202 for an operator's email and anyone's:
    // nothing before it depends on whether the email is an operator's.
    const ctx = createExecutionContext();
    const deadDb = { ...env, DATABASE_URL: "postgres://postgres@127.0.0.1:1/nothing" };
    for (const email of [owner.email, `${uniqueId("nobody")}@example.com`]) {
      const res = await worker.fetch(
        new Request(`${BASE}/operator/magic-link`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ tenant_id, email }),
        }),
        deadDb,
        ctx,
      );
      expect(res.status, email).toBe(202);
    }
    await waitOnExecutionContext(ctx);
    expect(await openMagicLinks(owner.id)).toBe(0);
  });

  it("two owners removing each other at once leave one owner: the second waits for the first and is refused", async () => {
    const { tenant_id } = await createTenant();
    const [a, b] = [await operator(tenant_id, "owner"), await operator(tenant_id, "owner")];
    const [byA, byB] = await Promise.all([
      consoleSend("DELETE", `/operator/operators/${b.id}`, a.session),
      consoleSend("DELETE", `/operator/operators/${a.id}`, b.session),
    ]);
    // One removal went through (and ended the removed owner's session); the other is 409 or, when
    // its session was the one removed first, 401.
    const statuses = [byA.status, byB.status].sort();
    expect(statuses[0]).toBe(200);
    expect([401, 409]).toContain(statuses[1]);
    const owners = await query<{ n: number }>(
      sql`select count(*)::int as n from operators where tenant_id = ${tenant_id} and role = 'owner' and removed_at is null`,
    );
    expect(owners[0]?.n).toBe(1);
  });

  it("invitations are bounded per tenant: 50 a day (429), 200 operators at once (409)", async () => {
    const { tenant_id } = await createTenant();
    const invite = (email = `${uniqueId("inv")}@example.com`) =>
      admin("POST", `/tenants/${tenant_id}/operators`, { email, name: "Invited", role: "agent" });
    for (let i = 0; i < MAX_INVITES_PER_DAY; i++)
      expect((await invite()).status, `invite ${i + 1}`).toBe(201);
    const over = await invite();
    expect(over.status).toBe(429);
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    const rows = await query<{ n: number }>(
      sql`select count(*)::int as n from operators where tenant_id = ${tenant_id}`,
    );
    expect(rows[0]?.n).toBe(MAX_INVITES_PER_DAY);
    // A day later (the rows made older), the daily bound has room; the number at once still binds.
    await query(
      sql`update operators set created_at = now() - interval '2 days' where tenant_id = ${tenant_id}`,
    );
    await query(sql`insert into operators (id, tenant_id, email, name, role, created_at)
      select gen_random_uuid(), ${tenant_id}, 'bulk-' || g || '@example.com', 'Bulk', 'agent', now() - interval '2 days'
      from generate_series(1, ${MAX_OPERATORS - MAX_INVITES_PER_DAY - 1}) g`);
    expect((await invite()).status).toBe(201);
    const full = await invite();
    expect(full.status).toBe(409);
    expect((await envelope(full)).message).toContain(`at most ${MAX_OPERATORS} operators`);
    // A removed operator makes room.
    await query(
      sql`update operators set removed_at = now() where tenant_id = ${tenant_id} and email = 'bulk-1@example.com'`,
    );
    expect((await invite()).status).toBe(201);
  });

  it("an agent reads a stored URL's origin only: the alert webhook, a tool's target, the embeddings gateway", async () => {
    const { tenant_id } = await createTenant();
    const owner = await operator(tenant_id, "owner");
    const agent = await operator(tenant_id, "agent");
    const hook = "https://hooks.slack.example/services/T000/B000/XXXXSECRET";
    const target = "https://tools.example.com/orders?key=tok_SECRET";
    const gateway = "https://gateway.example.com/v1/tok_SECRET";
    expect((await admin("PUT", `/tenants/${tenant_id}/alert-settings`, { webhook_url: hook })).status).toBe(
      200,
    );
    const tool = {
      name: "lookup",
      description: "Looks up an order",
      parameters: { type: "object", properties: {} },
      target: { kind: "https", url: target },
    };
    expect((await admin("POST", `/tenants/${tenant_id}/tools`, tool)).status).toBe(201);
    const embedding = { provider: "openai", model: "m", base_url: gateway, api_key: "k" };
    expect((await admin("PATCH", `/tenants/${tenant_id}/knowledge/settings`, { embedding })).status).toBe(
      200,
    );
    const read = async (session: { cookie: string }) => {
      const get = async (path: string) => {
        const res = await consoleSend("GET", path, session);
        expect(res.status, path).toBe(200);
        return res.json() as Promise<unknown>;
      };
      const [alerts, tools, one, knowledge] = [
        (await get("/operator/alert-settings")) as { webhook_url: string },
        (await get("/operator/tools")) as { tools: { target: { url: string } }[] },
        (await get("/operator/tools/lookup")) as { target: { url: string } },
        (await get("/operator/knowledge/settings")) as { embedding: { base_url: string } },
      ];
      return [alerts.webhook_url, tools.tools[0]?.target.url, one.target.url, knowledge.embedding.base_url];
    };
    expect(await read(agent.session)).toEqual([
      "https://hooks.slack.example",
      "https://tools.example.com",
      "https://tools.example.com",
      "https://gateway.example.com",
    ]);
    // Owners, who may change them, read them whole.
    expect(await read(owner.session)).toEqual([hook, target, target, gateway]);
  });
});
