/**
 * Operator accounts: signing into the console (`/operator/session`, magic links, invitations) and
 * managing a tenant's operators (`/operators` in every tenant scope: the tenant's secret key, the
 * admin, and the tenant's owners in the console).
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { type AppEnv, execCtx, newRouter } from "../app";
import { admittedAddress, countAttempt, failedAttempt } from "../auth/throttle";
import { openDb } from "../db/client";
import type { Env } from "../env";
import { AppError, errorSummary } from "../errors";
import { closeOperatorSockets } from "../handoff/operator-sockets";
import { sendEmail } from "../notify/consumer";
import { errors, jsonBody, jsonResponse, operatorSecurity } from "../openapi";
import { TENANT_ID } from "../tenants/schemas";
import type { TenantScope } from "../tenants/scope";
import { clearSessionCookie, operatorAuth, sessionToken, setSessionCookie } from "./middleware";
import { PASSWORD_MAX, PASSWORD_MIN } from "./password";
import {
  acceptInvite,
  csrfToken,
  endSession,
  INVITE_TTL_MS,
  inviteOperator,
  listOperators,
  MAGIC_TTL_MS,
  magicLinkToken,
  type OperatorIdentity,
  operatorOut,
  redeemMagicLink,
  removeOperator,
  revokeSessions,
  signIn,
  updateOperator,
} from "./service";

const TenantId = z.string().regex(TENANT_ID, "not a tenant id");
const Email = z.email().max(254);
const Password = z.string().min(PASSWORD_MIN).max(PASSWORD_MAX);
const OneUseToken = z.string().regex(/^[A-Za-z0-9]{43}$/, "not a link token");
const Role = z.enum(["owner", "agent"]);

export const Operator = z
  .object({
    id: z.uuid(),
    tenant_id: z.string(),
    email: z.string(),
    name: z.string(),
    role: Role,
    status: z.enum(["invited", "active", "removed"]),
    created_at: z.string(),
  })
  .openapi("Operator");

export const ConsoleSession = z
  .object({
    operator: Operator.omit({ status: true, created_at: true }),
    csrf_token: z.string().openapi({ description: "Send as X-CSRF-Token on every write under /operator" }),
  })
  .openapi("ConsoleSession");

const SignInBody = z.object({
  tenant_id: TenantId,
  email: Email,
  password: z.string().min(1).max(PASSWORD_MAX),
});
const MagicLinkBody = z.object({ tenant_id: TenantId, email: Email });
const RedeemBody = z.object({ token: OneUseToken });
const AcceptBody = z.object({ token: OneUseToken, password: Password });

const tags = ["console sessions"];
const noStore = { "Cache-Control": "no-store" };

/**
 * A write to the session routes must come from the console's own origin when a browser says where
 * it comes from: no other site can sign a visitor in or out (login CSRF).
 */
function sameOriginOnly(c: Context<AppEnv>): void {
  const origin = c.req.header("origin");
  if (origin && origin !== new URL(c.req.url).origin) {
    throw new AppError("FORBIDDEN", "console sessions are only for the console's own origin");
  }
}

async function sessionBody(op: Omit<OperatorIdentity, "sessionId" | "sessionExpiresAt">, token: string) {
  return {
    operator: { id: op.id, tenant_id: op.tenantId, email: op.email, name: op.name, role: op.role },
    csrf_token: await csrfToken(token),
  };
}

/** The console's address for a link: this deployment's own origin, the token in the fragment (never sent to a server). */
function consoleLink(c: Context<AppEnv>, kind: "magic" | "invite", token: string): string {
  return `${new URL(c.req.url).origin}/console/#${kind}=${token}`;
}

/**
 * Sends a link by email where the platform sends email; outside production it is also logged, so
 * `npm run dev` prints it. Off the request path: the answer takes as long whoever asked.
 */
function deliverLink(c: Context<AppEnv>, to: string, subject: string, text: string, url: string): void {
  execCtx(c).waitUntil(sendLink(c.get("svc").env, to, subject, text, url));
}

async function sendLink(env: Env, to: string, subject: string, text: string, url: string): Promise<void> {
  if (env.ENVIRONMENT !== "production") {
    console.log(JSON.stringify({ msg: "console link (development: not emailed)", to, url }));
    return;
  }
  const sent = await sendEmail(env, to, subject, text);
  if (sent.status !== "sent")
    console.error(JSON.stringify({ msg: "console link not sent", error: sent.error }));
}

/**
 * Makes and sends an operator's magic link, after the answer and with a database pool of its own
 * (the request's closes with it). Only an operator's email makes a link, in a transaction of
 * several round trips: done before the answer, the 202 would come later for an operator's email
 * than for anyone else's, and its timing would tell which emails are operators.
 */
async function sendMagicLink(c: Context<AppEnv>, tenantId: string, email: string): Promise<void> {
  const env: Env = c.get("svc").env;
  const dbh = openDb(env);
  try {
    const issued = await magicLinkToken(dbh.db, tenantId, email);
    if (!issued) return;
    const url = consoleLink(c, "magic", issued.token);
    const minutes = MAGIC_TTL_MS / 60_000;
    await sendLink(
      env,
      issued.operator.email,
      "Your chatedge console sign-in link",
      `Sign in to the ${tenantId} console (valid ${minutes} minutes, once):\n\n${url}\n\nIf you did not ask for it, ignore this email.`,
      url,
    );
  } catch (err) {
    console.error(JSON.stringify({ msg: "magic link not made", ...errorSummary(err) }));
  } finally {
    await dbh.close();
  }
}

const signInRoute = createRoute({
  method: "post",
  path: "/session",
  tags,
  summary: "Sign into the console with email and password; sets an HttpOnly session cookie",
  description:
    "Five wrong passwords in a row from one address lock the account for that address for 15 minutes; fifty from any addresses lock it for everyone. Both answer 429 with Retry-After, as an email that is no operator's does after as many.",
  request: { body: jsonBody(SignInBody) },
  responses: { 200: jsonResponse(ConsoleSession, "Signed in"), ...errors(400, 401, 403, 415, 429) },
});
const sessionRoute = createRoute({
  method: "get",
  path: "/session",
  tags,
  security: operatorSecurity,
  middleware: [operatorAuth],
  summary: "Who is signed in, and the CSRF token for writes",
  responses: { 200: jsonResponse(ConsoleSession, "The session"), ...errors(401, 403) },
});
const signOutRoute = createRoute({
  method: "delete",
  path: "/session",
  tags,
  security: operatorSecurity,
  middleware: [operatorAuth],
  summary: "Sign out: this session ends everywhere at once",
  responses: { 204: { description: "Signed out" }, ...errors(401, 403) },
});
const magicLinkRoute = createRoute({
  method: "post",
  path: "/magic-link",
  tags,
  summary: "Email a one-use sign-in link (15 minutes); the answer is the same whether the account exists",
  request: { body: jsonBody(MagicLinkBody) },
  responses: { 202: { description: "Sent if such an operator exists" }, ...errors(400, 403, 415, 429) },
});
const redeemRoute = createRoute({
  method: "post",
  path: "/magic-link/redeem",
  tags,
  summary: "Exchange a magic link's token for a session",
  request: { body: jsonBody(RedeemBody) },
  responses: { 200: jsonResponse(ConsoleSession, "Signed in"), ...errors(400, 401, 403, 415, 429) },
});
const acceptRoute = createRoute({
  method: "post",
  path: "/invitations/accept",
  tags,
  summary: "Accept an invitation: set a password (12 to 200 characters) and sign in",
  request: { body: jsonBody(AcceptBody) },
  responses: { 200: jsonResponse(ConsoleSession, "Signed in"), ...errors(400, 401, 403, 415, 429) },
});

/**
 * Before a route that opens a session checks anything: the console's own origin, and the caller's
 * address not over its failed-attempt limit. Answers the hashed address to count failures against.
 */
async function openingAllowed(c: Context<AppEnv>): Promise<string | undefined> {
  sameOriginOnly(c);
  return admittedAddress(c.get("svc"), c.req.raw.headers);
}

/** Sets the new session's cookie and answers its body. */
function opened(
  c: Context<AppEnv>,
  op: Omit<OperatorIdentity, "sessionId" | "sessionExpiresAt">,
  token: string,
) {
  setSessionCookie(c, token);
  return sessionBody(op, token);
}

/** Counts a failed token or password against the address, then answers the caller's 401 (or 429). */
async function refuse(c: Context<AppEnv>, ip: string | undefined, message: string): Promise<never> {
  throw await failedAttempt(c.get("svc"), ip, new AppError("UNAUTHORIZED", message));
}

/** The session routes under `/operator`; they make the cookie the operator scope then reads. */
export const operatorSessions = newRouter()
  .openapi(signInRoute, async (c) => {
    const ip = await openingAllowed(c);
    const { tenant_id, email, password } = c.req.valid("json");
    const svc = c.get("svc");
    const result = await signIn(svc.dbh.db, svc.cache, tenant_id, email, password, ip);
    if (!result.ok && result.locked) {
      // A locked account's attempts count against the address as wrong passwords do.
      const over = await countAttempt(svc, ip);
      if (over) throw over;
      const seconds = Math.ceil(result.locked.ms / 1000);
      const here = result.locked.scope === "address" ? " from this network" : "";
      throw new AppError(
        "RATE_LIMITED",
        `too many failed sign-ins for this account${here}; retry in ${seconds} s`,
        {
          headers: { "Retry-After": String(seconds) },
        },
      );
    }
    if (!result.ok) return refuse(c, ip, "email or password is wrong");
    return c.json(await opened(c, result.operator, result.token), 200, noStore);
  })
  .openapi(sessionRoute, async (c) => {
    const op = c.get("operator") as OperatorIdentity;
    return c.json(await sessionBody(op, sessionToken(c) as string), 200, noStore);
  })
  .openapi(signOutRoute, async (c) => {
    const svc = c.get("svc");
    await closeOperatorSockets(
      svc.env,
      await endSession(svc.dbh.db, (c.get("operator") as OperatorIdentity).sessionId),
    );
    clearSessionCookie(c);
    return c.body(null, 204, noStore);
  })
  .openapi(magicLinkRoute, async (c) => {
    const ip = await openingAllowed(c);
    const over = await countAttempt(c.get("svc"), ip);
    if (over) throw over;
    const { tenant_id, email } = c.req.valid("json");
    execCtx(c).waitUntil(sendMagicLink(c, tenant_id, email));
    return c.body(null, 202, noStore);
  })
  .openapi(redeemRoute, async (c) => {
    const ip = await openingAllowed(c);
    const out = await redeemMagicLink(c.get("svc").dbh.db, c.req.valid("json").token);
    if (!out) return refuse(c, ip, "this sign-in link is unknown, used or expired; ask for a new one");
    return c.json(await opened(c, out.operator, out.token), 200, noStore);
  })
  .openapi(acceptRoute, async (c) => {
    const ip = await openingAllowed(c);
    const { token, password } = c.req.valid("json");
    const out = await acceptInvite(c.get("svc").dbh.db, token, password);
    if (!out) return refuse(c, ip, "this invitation is unknown, used or expired; ask for a new one");
    return c.json(await opened(c, out.operator, out.token), 200, noStore);
  });

const OperatorInvite = z.object({ email: Email, name: z.string().trim().min(1).max(100), role: Role });
const OperatorPatch = z
  .object({ name: z.string().trim().min(1).max(100).optional(), role: Role.optional() })
  .refine((p) => p.name !== undefined || p.role !== undefined, "nothing to change: give name or role");
const OperatorIdParam = z.object({
  operator_id: z.uuid().openapi({ param: { name: "operator_id", in: "path" } }),
});
export const InvitedOperator = z
  .object({
    operator: Operator,
    invite_url: z.string().openapi({ description: "One use, valid 7 days; shown only here (and emailed)" }),
  })
  .openapi("InvitedOperator");

/** `/operators` in a tenant scope: list, invite, change, remove, sign out everywhere. */
export const operatorRoutes = (scope: TenantScope) =>
  newRouter()
    .openapi(
      scope.route({
        method: "get",
        path: "/operators",
        tags: ["operators"],
        summary: "The tenant's operators (console accounts)",
        responses: { 200: jsonResponse(z.object({ data: z.array(Operator) }), "The operators") },
      }),
      async (c) => {
        const rows = await listOperators(c.get("svc").dbh.db, c.get("tenant").id);
        return c.json({ data: rows.map(operatorOut) }, 200);
      },
    )
    .openapi(
      scope.route({
        method: "post",
        path: "/operators",
        tags: ["operators"],
        summary: "Invite an operator; the invitation link is in this answer only (and emailed in production)",
        description:
          "A tenant has at most 200 operators (409 beyond; removed ones do not count) and invites at most 50 a day (429 with Retry-After beyond).",
        request: { body: jsonBody(OperatorInvite) },
        responses: {
          201: jsonResponse(InvitedOperator, "The invited operator"),
          ...errors(400, 409, 413, 415, 429),
        },
      }),
      async (c) => {
        const tenant = c.get("tenant");
        const { row, token } = await inviteOperator(
          c.get("svc").dbh.db,
          c.get("actor"),
          tenant.id,
          c.req.valid("json"),
        );
        const url = consoleLink(c, "invite", token);
        const days = INVITE_TTL_MS / 86_400_000;
        deliverLink(
          c,
          row.email,
          `You are invited to the ${tenant.name} chatbot console`,
          `Set your password and sign in (valid ${days} days, once):\n\n${url}`,
          url,
        );
        return c.json({ operator: operatorOut(row), invite_url: url }, 201, noStore);
      },
    )
    .openapi(
      scope.route({
        method: "patch",
        path: "/operators/{operator_id}",
        tags: ["operators"],
        summary: "Rename an operator or change their role (a tenant keeps at least one owner)",
        request: { params: OperatorIdParam, body: jsonBody(OperatorPatch) },
        responses: { 200: jsonResponse(Operator, "The operator"), ...errors(400, 404, 409, 413, 415) },
      }),
      async (c) => {
        const { operator_id } = c.req.valid("param");
        const row = await updateOperator(
          c.get("svc").dbh.db,
          c.get("actor"),
          c.get("tenant").id,
          operator_id,
          c.req.valid("json"),
        );
        return c.json(operatorOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "delete",
        path: "/operators/{operator_id}",
        tags: ["operators"],
        summary: "Remove an operator: their sessions end at once; the audit log keeps their name",
        request: { params: OperatorIdParam },
        responses: { 200: jsonResponse(Operator, "The removed operator"), ...errors(400, 404, 409) },
      }),
      async (c) => {
        const { operator_id } = c.req.valid("param");
        const svc = c.get("svc");
        const { row, sockets } = await removeOperator(
          svc.dbh.db,
          c.get("actor"),
          c.get("tenant").id,
          operator_id,
        );
        await closeOperatorSockets(svc.env, sockets);
        return c.json(operatorOut(row), 200);
      },
    )
    .openapi(
      scope.route({
        method: "delete",
        path: "/operators/{operator_id}/sessions",
        // An agent may sign itself out everywhere (a cookie left on a shared computer, or stolen),
        // and no one else.
        agents: true,
        tags: ["operators"],
        summary: "Sign an operator out everywhere (an agent: only itself)",
        request: { params: OperatorIdParam },
        responses: {
          200: jsonResponse(z.object({ revoked: z.number().int() }), "How many live sessions ended"),
          ...errors(400, 403, 404),
        },
      }),
      async (c) => {
        const { operator_id } = c.req.valid("param");
        const op = c.get("operator");
        if (op && op.role !== "owner" && op.id !== operator_id)
          throw new AppError("FORBIDDEN", "an agent may sign only itself out everywhere");
        const svc = c.get("svc");
        const { revoked, sockets } = await revokeSessions(
          svc.dbh.db,
          c.get("actor"),
          c.get("tenant").id,
          operator_id,
        );
        await closeOperatorSockets(svc.env, sockets);
        return c.json({ revoked }, 200);
      },
    );
