import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { HTTPException } from "hono/http-exception";
import { openAiAppError, openAiError } from "./chat/openai-format";
import type { Visitor } from "./chat/visitor-token";
import { loadEnv, type RawEnv } from "./env";
import { AppError, codeOf, errorBody, errorSummary } from "./errors";
import type { OperatorIdentity } from "./operators/service";
import { type InputIssue, inputIssues, MAX_ISSUES } from "./request-checks";
import { ResponseTiming } from "./response-timing";
import { newServices, type Services } from "./services";
import type { ApiKeyRecord, TenantConfig } from "./tenants/config";
import type { Actor } from "./tenants/service";

export interface AppEnv {
  Bindings: RawEnv;
  Variables: {
    requestId: string;
    svc: Services;
    tenant: TenantConfig;
    apiKey: ApiKeyRecord;
    /** A browser's (publishable key's) address as a keyed hash (src/auth/client-ip.ts), set by tenantAuth. */
    clientIp: string | undefined;
    /** A browser's visitor, from its signed visitor token (src/chat/visitor-token.ts). */
    visitor: Visitor | undefined;
    /** Who acts on the tenant (a tenant-scoped route's admin, secret key or operator), for the audit log. */
    actor: Actor;
    /** The operator signed into the console (src/operators/middleware.ts), on `/operator` routes. */
    operator: OperatorIdentity | undefined;
    /** The request's arrival and its response's last byte: the response time turns record. */
    timing: ResponseTiming;
  };
}

export type App = OpenAPIHono<AppEnv>;

/** The paths OpenAI's clients call (`/v1/chat/completions`, `/v1/models` and anything under them). */
const OPENAI_PATHS = /^\/v1\/(?:chat\/completions|models)(?:\/|$)/;

/**
 * Answers an error in the one envelope, or in OpenAI's shape on the paths OpenAI's clients call,
 * wherever it was raised (body rules, env, auth, the route, no route); AppError headers
 * (Retry-After, ...) are kept.
 */
export function errorResponse(c: Context<AppEnv>, err: Error): Response {
  const rid = c.get("requestId") ?? "unknown";
  const openAi = OPENAI_PATHS.test(c.req.path);
  if (err instanceof AppError) {
    const body = openAi ? openAiAppError(err, rid) : errorBody(err.code, err.message, rid, err.details);
    return c.json(body, err.status, err.headers);
  }
  if (err instanceof HTTPException) {
    const code = codeOf(err.status);
    const message = err.status >= 500 ? "internal error" : err.message || code.toLowerCase();
    return c.json(openAi ? openAiError(code, message, rid) : errorBody(code, message, rid), err.status);
  }
  console.error(JSON.stringify({ msg: "unhandled error", requestId: rid, ...errorSummary(err) }));
  const body = openAi
    ? openAiError("INTERNAL", "internal error", rid)
    : errorBody("INTERNAL", "internal error", rid);
  return c.json(body, 500);
}

function refuse(issues: InputIssue[]): never {
  const shown = issues.slice(0, MAX_ISSUES);
  const more = issues.length - shown.length;
  const summary = shown.map((i) => (i.path ? `${i.path}: ${i.message}` : i.message)).join("; ");
  throw new AppError(
    "VALIDATION_FAILED",
    `invalid request: ${summary}${more > 0 ? `; and ${more} more` : ""}`,
    { details: shown },
  );
}

/**
 * Zod validation failures answer 400 in the envelope with each issue's path and message; input
 * that passed its schema still goes through the checks every input gets (src/request-checks.ts).
 */
const validationHook = (
  result: {
    success: boolean;
    data?: unknown;
    error?: { issues: ReadonlyArray<{ path: PropertyKey[]; message: string }> };
  },
  c: Context<AppEnv>,
) => {
  if (result.success) {
    // Outside the full app (a bare router) there is no parsed env: production's strict rules apply.
    const issues = inputIssues(result.data, c.get("svc")?.env ?? { ENVIRONMENT: "production" });
    if (issues.length > 0) refuse(issues);
    return;
  }
  if (!result.error) return;
  refuse(result.error.issues.map((i) => ({ path: i.path.map(String).join("."), message: i.message })));
};

/** A bare router with the shared error handling and validation hook; features build on it. */
export function newRouter(): App {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  app.onError((err, c) => errorResponse(c, err));
  return app;
}

/** The request's ExecutionContext in workers-types' shape (Hono types its own copy of it). */
export function execCtx(c: Context<AppEnv>): ExecutionContext {
  return c.executionCtx as unknown as ExecutionContext;
}

const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);

/** Request ids a client may choose: short, of word characters, `-` and `=` (else one is made). */
const CLIENT_REQUEST_ID = /^[\w\-=]{1,128}$/;

/**
 * The application: request ids, env validation, per-request services, body rules, 404s. The
 * first four are one middleware: each layer of Hono's chain is an async hop on every request.
 */
export function newApp(): App {
  const app = newRouter();
  app.use(async (c, next) => {
    // The response time runs from the request's arrival to its last byte, whatever answered.
    const timing = ResponseTiming.of(c.req.raw);
    c.set("timing", timing);
    const asked = c.req.header("x-request-id");
    const rid = asked && CLIENT_REQUEST_ID.test(asked) ? asked : crypto.randomUUID();
    c.set("requestId", rid);
    c.header("X-Request-Id", rid);
    try {
      const loaded = loadEnv(c.env);
      if (!loaded.ok) {
        console.error(JSON.stringify({ msg: "environment invalid", problems: loaded.problems }));
        throw new AppError("MISCONFIGURED", `worker misconfigured: ${loaded.problems.join("; ")}`);
      }
      const svc = newServices(loaded.env);
      c.set("svc", svc);
      try {
        await withinBodyRules(c, svc.env.MAX_BODY_BYTES, next);
      } finally {
        if (svc.dbh.used) c.executionCtx.waitUntil(svc.dbh.close());
      }
    } catch (err) {
      // Answered here, as the app's error handler would, so the timing below sees the answer.
      if (!(err instanceof Error)) throw err;
      c.res = errorResponse(c, err);
    }
    // Assigning c.res copies the response and every header onto the copy: only when it changed.
    const watched = timing.watch(c.res);
    if (watched !== c.res) c.res = watched;
  });
  app.notFound((c) =>
    errorResponse(c, new AppError("NOT_FOUND", `no route for ${c.req.method} ${c.req.path}`)),
  );
  return app;
}

/**
 * A body must be JSON and within the size limit. A declared length is checked as it stands (the
 * body is left to the handler's own read); a body without one is read through Hono's limiter.
 */
function withinBodyRules(c: Context<AppEnv>, limit: number, next: () => Promise<void>): Promise<void> {
  const req = c.req.raw;
  if (!BODY_METHODS.has(req.method)) return next();
  const length = req.headers.get("content-length");
  if (length !== null && !req.headers.has("transfer-encoding")) {
    if (length === "0") return next();
    checkJson(c);
    if (Number.parseInt(length, 10) > limit) throw tooLarge(limit);
    return next();
  }
  if (req.body === null) return next();
  checkJson(c);
  return bodyLimitOf(limit)(c, next) as Promise<void>;
}

function checkJson(c: Context<AppEnv>): void {
  const type = c.req.header("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) {
    throw new AppError(
      "UNSUPPORTED_MEDIA_TYPE",
      "request body must be JSON (Content-Type: application/json)",
    );
  }
}

const tooLarge = (limit: number) => new AppError("PAYLOAD_TOO_LARGE", `request body exceeds ${limit} bytes`);

// One body-limit middleware per configured limit, built once, not per request (one limit per env).
const bodyLimits = new Map<number, ReturnType<typeof bodyLimit>>();
function bodyLimitOf(limit: number): ReturnType<typeof bodyLimit> {
  let limiter = bodyLimits.get(limit);
  if (!limiter) {
    limiter = bodyLimit({
      maxSize: limit,
      onError: () => {
        throw tooLarge(limit);
      },
    });
    bodyLimits.set(limit, limiter);
  }
  return limiter;
}
