/**
 * Credentials a client makes up, wherever it can put them: every request header the API reads, the
 * live socket's ticket, the inbox's cursor, the console's one-use tokens and a browser's identity
 * claim, filled with forged, truncated, mangled and hostile values. None may answer 500, and every
 * refusal is the API's error envelope (OpenAI's shape on the OpenAI routes). A visitor token such as `vt1.A.AAAA` (one character
 * past a multiple of four) once made `atob` throw: a 500 for anyone holding the publishable key.
 * This is the property that finds that class of bug on every route a copied key reaches.
 */
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { AUTH_FAILURES_PER_MINUTE } from "../../src/auth/throttle";
import { operator, type Session, SITE, visitor, widgetTenant } from "./handoff/helpers";
import { BASE, call, envelope, hmacHex, send, uniqueId } from "./helpers";
import { expectHandled, INJECTIONS } from "./hostile-values";

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/** Characters a token's parts are made of, and the ones a forger mixes in. */
const tokenChar = fc.constantFrom(...B64URL, "=", "+", "/", ".", "%", " ");
/**
 * A token's part: mostly base64url of any length (a length one past a multiple of four is what no
 * encoding makes, and what once made `atob` throw), sometimes with other characters mixed in.
 */
const tokenPart = (maxLength: number) =>
  fc.oneof(
    { arbitrary: fc.string({ unit: fc.constantFrom(...B64URL), maxLength }), weight: 3 },
    { arbitrary: fc.string({ unit: tokenChar, maxLength }), weight: 1 },
  );
/** Token-shaped strings: a prefix and two or three parts of any length, base64url or nearly. */
const tokenShaped = fc
  .tuple(
    fc.constantFrom("vt1", "lt1", "vt2", "", "VT1", "Bearer"),
    tokenPart(90),
    tokenPart(90),
    fc.option(tokenPart(20)),
  )
  .map(([p, a, b, c]) => [p, a, b, ...(c === null ? [] : [c])].join("."));
/** A real credential cut, spliced or padded at random places. */
const mangled = (real: string) =>
  fc
    .tuple(
      fc.nat(real.length),
      fc.nat(real.length),
      fc.constantFrom("", "A", "AA", "=", ".", "%00", "-_", " "),
    )
    .map(([i, j, insert]) => real.slice(0, Math.min(i, j)) + insert + real.slice(Math.max(i, j)));
/**
 * A real credential with one of its dot-separated parts replaced by a token part: the prefix and the
 * other parts stay, so the forgery reaches the decoding of the part it replaced.
 */
const reshaped = (real: string) =>
  fc.tuple(fc.nat(real.split(".").length - 1), tokenPart(12)).map(([i, part]) =>
    real
      .split(".")
      .map((p, j) => (j === i ? part : p))
      .join("."),
  );
/** Only what a client can put on the wire: printable ASCII header values. */
const printable = (s: string) => /^[\x20-\x7e]*$/.test(s);
const hostile = (real: string) =>
  fc.oneof(
    { arbitrary: reshaped(real), weight: 3 },
    { arbitrary: mangled(real), weight: 2 },
    { arbitrary: tokenShaped, weight: 2 },
    fc.constantFrom(...INJECTIONS.filter(printable)),
    fc.string({ maxLength: 120 }).filter(printable),
    fc.integer({ min: 1_000, max: 8_000 }).map((n) => "A".repeat(n)),
    fc.constant(""),
  );

interface Target {
  name: string;
  method: string;
  /** The path, given the fuzzed value for a query parameter (the real one when it is not fuzzed). */
  path: (query?: string) => string;
  headers: Record<string, string>;
  body?: unknown;
  /** The real value of the query parameter this route reads, when it reads one. */
  query?: string;
  openai?: boolean;
}

let targets: Target[] = [];

beforeAll(async () => {
  const t = await widgetTenant();
  const v = visitor(t.pk);
  const conv = await v.start();
  const token = v.token as string;
  const ticketRes = await v.ticket(conv.id);
  expect(ticketRes.status).toBe(200);
  const ticket = new URL(((await ticketRes.json()) as { url: string }).url).searchParams.get(
    "ticket",
  ) as string;
  const owner = await operator(t.id, "owner");
  const session: Session = owner.session;
  const widget = {
    authorization: `Bearer ${t.pk}`,
    origin: SITE,
    "cf-connecting-ip": "203.0.113.9",
    "x-visitor-token": token,
    "content-type": "application/json",
    accept: "application/json",
    "x-request-id": "req-1",
  };
  const server = {
    authorization: `Bearer ${t.key}`,
    "content-type": "application/json",
    "x-request-id": "req-2",
  };
  const consoleHeaders = {
    cookie: session.cookie,
    "x-csrf-token": session.csrf,
    origin: BASE,
    "sec-fetch-site": "same-origin",
    "content-type": "application/json",
  };
  const conversation = `/v1/conversations/${conv.id}`;
  targets = [
    { name: "widget config", method: "GET", path: () => "/v1/config", headers: widget },
    { name: "widget start", method: "POST", path: () => "/v1/conversations", headers: widget, body: {} },
    { name: "widget transcript", method: "GET", path: () => conversation, headers: widget },
    {
      name: "widget message",
      method: "POST",
      path: () => `${conversation}/messages`,
      headers: widget,
      body: { content: "hello" },
    },
    {
      name: "widget feedback",
      method: "POST",
      path: () => `${conversation}/feedback`,
      headers: widget,
      body: { csat: 4 },
    },
    { name: "widget live ticket", method: "POST", path: () => `${conversation}/live`, headers: widget },
    {
      name: "visitor live socket",
      method: "GET",
      path: (q) => `${conversation}/live?ticket=${encodeURIComponent(q ?? "")}`,
      query: ticket,
      headers: { upgrade: "websocket", origin: SITE },
    },
    {
      name: "OpenAI chat",
      method: "POST",
      path: () => "/v1/chat/completions",
      headers: { ...server, "x-conversation-id": "c-1" },
      body: { model: "mock", messages: [{ role: "user", content: "hello" }] },
      openai: true,
    },
    { name: "OpenAI models", method: "GET", path: () => "/v1/models", headers: server, openai: true },
    {
      name: "inbox page",
      method: "GET",
      path: (q) => `/v1/inbox?cursor=${encodeURIComponent(q ?? "")}`,
      query: "",
      headers: server,
    },
    {
      name: "console inbox page",
      method: "GET",
      path: (q) => `/operator/inbox?cursor=${encodeURIComponent(q ?? "")}`,
      query: "",
      headers: consoleHeaders,
    },
    {
      name: "console takeover",
      method: "POST",
      path: () => `/operator/inbox/${conv.id}/takeover`,
      headers: consoleHeaders,
    },
    {
      name: "console socket",
      method: "GET",
      path: () => `/operator/inbox/${conv.id}/live`,
      headers: { cookie: session.cookie, origin: BASE, upgrade: "websocket" },
    },
    { name: "console session", method: "GET", path: () => "/operator/session", headers: consoleHeaders },
  ];
});

/** Where a client can put a credential: a request header, or the route's query parameter. */
const PLACES = [
  "authorization",
  "origin",
  "cf-connecting-ip",
  "x-visitor-token",
  "x-request-id",
  "x-conversation-id",
  "x-csrf-token",
  "cookie",
  "sec-fetch-site",
  "accept",
  "content-type",
  "upgrade",
  "?query",
] as const;
type Place = (typeof PLACES)[number];

/** A request to one of the targets with one to three of its places replaced by hostile values. */
const forgedRequest = () =>
  fc
    .constantFrom(...targets)
    .chain((t) =>
      fc
        .uniqueArray(fc.constantFrom(...PLACES), { minLength: 1, maxLength: 3 })
        .chain((places) =>
          fc.tuple(
            fc.constant(t),
            fc.tuple(
              ...places.map((p: Place) =>
                fc.tuple(fc.constant(p), hostile(p === "?query" ? (t.query ?? "") : (t.headers[p] ?? ""))),
              ),
            ),
          ),
        ),
    );

describe("forged and malformed credentials, wherever a client puts them", () => {
  it("never answer 500, and every refusal is the error envelope", async () => {
    await fc.assert(
      fc.asyncProperty(forgedRequest(), async ([t, forged]) => {
        const headers = { ...t.headers };
        let query = t.query;
        for (const [place, value] of forged) {
          if (place === "?query") query = value;
          else if (place === "authorization" && !value.startsWith("Bearer"))
            headers[place] = `Bearer ${value}`;
          else headers[place] = value;
        }
        const res = await call(t.path(query), {
          method: t.method,
          headers,
          body: t.body === undefined ? undefined : JSON.stringify(t.body),
        });
        await expectHandled(res, `${t.name}, ${JSON.stringify(forged).slice(0, 300)}`, t.openai);
      }),
      { numRuns: 1_000 },
    );
    // 1,000 requests: 12 s alone, 23-29 s in CI beside the other half of the worker tests and the
    // browser tests, against vitest's default 30 s; the same budget as hostile-bodies' 2,500.
  }, 120_000);

  it("a browser's forged identity claim is refused in the envelope, and only the real one starts", async () => {
    const t = await widgetTenant();
    const made = await send("POST", "/v1/identity-secret", t.key);
    expect(made.status).toBe(200);
    const { identity_secret: secret } = (await made.json()) as { identity_secret: string };
    const userId = "user-4711";
    const real = await hmacHex(secret, userId);
    const hex = fc.string({
      unit: fc.constantFrom(..."0123456789abcdefABCDEF"),
      minLength: 64,
      maxLength: 64,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constant(userId),
          fc.constantFrom(...INJECTIONS),
          fc.string({ minLength: 1, maxLength: 300 }),
        ),
        fc.oneof(mangled(real), hex, tokenShaped, fc.constantFrom(...INJECTIONS)),
        async (claimed, hash) => {
          const res = await send(
            "POST",
            "/v1/conversations",
            t.pk,
            { user_id: claimed, user_hash: hash },
            {
              origin: SITE,
              "cf-connecting-ip": "203.0.113.11",
            },
          );
          const genuine = claimed === userId && hash.toLowerCase() === real;
          if (genuine) expect(res.status).toBe(201);
          else {
            await expectHandled(
              res,
              `user_id ${JSON.stringify(claimed).slice(0, 80)}, user_hash ${hash.slice(0, 80)}`,
            );
            expect(res.status).toBeGreaterThanOrEqual(400);
          }
        },
      ),
      { numRuns: 100 },
    );
  });

  it("the console's one-use tokens, forged, are refused in the envelope", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("/operator/magic-link/redeem", "/operator/invitations/accept"),
        fc.oneof(tokenShaped, fc.constantFrom(...INJECTIONS), fc.string({ maxLength: 200 })),
        async (path, token) => {
          const res = await call(path, {
            method: "POST",
            headers: { "content-type": "application/json", origin: BASE, "cf-connecting-ip": "203.0.113.10" },
            body: JSON.stringify({ token, password: "correct horse battery staple" }),
          });
          await expectHandled(res, `${path} ${JSON.stringify(token).slice(0, 100)}`);
          expect(res.status).toBeGreaterThanOrEqual(400);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("the console's one-use tokens guessed from one address: the 21st guess is refused before any lookup", async () => {
    for (const path of ["/operator/magic-link/redeem", "/operator/invitations/accept"]) {
      const address = `203.0.113.11-${uniqueId("ip")}`;
      const guess = () =>
        call(path, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            origin: BASE,
            "cf-connecting-ip": address,
          },
          body: JSON.stringify({ token: "A".repeat(43), password: "correct horse battery staple" }),
        });
      for (let i = 0; i < AUTH_FAILURES_PER_MINUTE; i++)
        expect((await guess()).status, `${path} ${i + 1}`).toBe(401);
      const over = await guess();
      expect(over.status, path).toBe(429);
      expect((await envelope(over)).message).toContain("from this address");
    }
  });
});
