/**
 * A local stand-in for challenges.cloudflare.com (the machine running `npm run dev` and the tests
 * has no internet), with the same paths so only the origin changes:
 *
 *  - `POST /turnstile/v0/siteverify` speaks the real siteverify API: `secret`, `response`,
 *    `remoteip`, `idempotency_key` as a form-encoded or JSON body; answers
 *    `{success, error-codes, challenge_ts, hostname, action, cdata}`. Cloudflare's documented test
 *    secret keys behave as documented: 1x...AA passes any token, 2x...AA fails
 *    (`invalid-input-response`), 3x...AA answers `timeout-or-duplicate` (a spent token); any other
 *    secret is `invalid-input-secret` (real secrets only work against Cloudflare).
 *  - `GET /turnstile/v0/api.js` is a stand-in for the client script with the documented explicit
 *    API (`turnstile.render(container, {sitekey, callback, "error-callback", "expired-callback"})`,
 *    `reset`, `remove`, `getResponse`) and the documented test site keys: 1x...AA/1x...BB pass with
 *    the dummy token `XXXX.DUMMY.TOKEN.XXXX`, 2x...AB/2x...BB block (error-callback), 3x...FF asks
 *    for a click first; any other site key is an invalid site key (error 110100).
 *  - `GET /__requests` lists the siteverify requests seen (newest last), `POST /__reset` forgets them.
 *
 * Usage: node local/turnstile.ts [--port 8791]
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { listen } from "./ports.ts";

/** Cloudflare's documented test secret keys. */
export const TEST_SECRETS = {
  passes: "1x0000000000000000000000000000000AA",
  fails: "2x0000000000000000000000000000000AA",
  spent: "3x0000000000000000000000000000000AA",
} as const;

/** Cloudflare's documented test site keys. */
export const TEST_SITE_KEYS = {
  passes: "1x00000000000000000000AA",
  blocks: "2x00000000000000000000AB",
  interactive: "3x00000000000000000000FF",
} as const;

/** The token the test site keys hand the browser. */
export const DUMMY_TOKEN = "XXXX.DUMMY.TOKEN.XXXX";

export interface VerifyRequest {
  secret?: string;
  response?: string;
  remoteip?: string;
  idempotency_key?: string;
  contentType: string;
}

export type FakeTurnstile = {
  port: number;
  /** The origin, e.g. http://127.0.0.1:8791: append /turnstile/v0/siteverify or /turnstile/v0/api.js. */
  url: string;
  siteverifyUrl: string;
  scriptUrl: string;
  close(): Promise<void>;
};

/** What siteverify answers for a request, as Cloudflare does for its test secret keys. */
export function verify(req: Omit<VerifyRequest, "contentType">, now = new Date()) {
  const fail = (code: string) => ({ success: false, "error-codes": [code], messages: [] });
  if (!req.secret) return fail("missing-input-secret");
  if (!req.response) return fail("missing-input-response");
  if (req.response.length > 2048) return fail("invalid-input-response");
  switch (req.secret) {
    case TEST_SECRETS.passes:
      return {
        success: true,
        "error-codes": [],
        challenge_ts: now.toISOString(),
        hostname: "example.com",
        action: "",
        cdata: "",
        metadata: { interactive: false },
        messages: [],
      };
    case TEST_SECRETS.fails:
      return fail("invalid-input-response");
    case TEST_SECRETS.spent:
      return fail("timeout-or-duplicate");
    default:
      return fail("invalid-input-secret");
  }
}

/** Parses a siteverify body, form-encoded or JSON; undefined when it is neither. */
function parseBody(contentType: string, raw: string): Record<string, string> | undefined {
  if (contentType.includes("application/json")) {
    try {
      const v = JSON.parse(raw) as unknown;
      if (!v || typeof v !== "object" || Array.isArray(v)) return undefined;
      return Object.fromEntries(
        Object.entries(v).filter((e): e is [string, string] => typeof e[1] === "string"),
      );
    } catch {
      return undefined;
    }
  }
  if (
    contentType.includes("application/x-www-form-urlencoded") ||
    contentType.includes("multipart/form-data")
  )
    return Object.fromEntries(new URLSearchParams(raw));
  return undefined;
}

/** The client script stand-in: the explicit-render API, driven by the documented test site keys. */
const CLIENT_SCRIPT = `(function () {
  if (window.turnstile) return;
  var TOKEN = ${JSON.stringify(DUMMY_TOKEN)};
  var widgets = {};
  var next = 0;
  function run(w) {
    w.token = undefined;
    w.box.textContent = "Verifying…";
    var key = w.opts.sitekey;
    var call = function (name, arg) { var f = w.opts[name]; if (typeof f === "function") f(arg); };
    if (/^1x0{20}(AA|BB)$/.test(key)) {
      setTimeout(function () { w.token = TOKEN; w.box.textContent = "Success!"; call("callback", TOKEN); }, 50);
    } else if (/^2x0{20}(AB|BB)$/.test(key)) {
      setTimeout(function () { w.box.textContent = "Verification failed"; call("error-callback", "600010"); }, 50);
    } else if (/^3x0{20}FF$/.test(key)) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "Verify you are human";
      b.onclick = function () { w.token = TOKEN; w.box.textContent = "Success!"; call("callback", TOKEN); };
      w.box.textContent = "";
      w.box.appendChild(b);
    } else {
      setTimeout(function () { w.box.textContent = "Invalid site key"; call("error-callback", "110100"); }, 0);
    }
  }
  window.turnstile = {
    render: function (container, opts) {
      var el = typeof container === "string" ? document.querySelector(container) : container;
      if (!el) throw new Error("turnstile.render: no such container");
      var id = "cf-chl-widget-" + (++next);
      var box = document.createElement("div");
      box.id = id;
      box.setAttribute("data-turnstile-stand-in", "");
      el.appendChild(box);
      widgets[id] = { opts: opts || {}, box: box };
      run(widgets[id]);
      return id;
    },
    reset: function (id) { var w = widgets[id || Object.keys(widgets)[0]]; if (w) run(w); },
    remove: function (id) { var w = widgets[id]; if (w) { w.box.remove(); delete widgets[id]; } },
    getResponse: function (id) { var w = widgets[id || Object.keys(widgets)[0]]; return w && w.token; },
    isExpired: function () { return false; },
    ready: function (fn) { fn(); }
  };
  var onload = new URL(document.currentScript ? document.currentScript.src : location.href).searchParams.get("onload");
  if (onload && typeof window[onload] === "function") window[onload]();
})();
`;

/** Starts the stand-in; resolves once it listens (port 0 picks a free port). */
export async function startTurnstile(opts: { port?: number; host?: string } = {}): Promise<FakeTurnstile> {
  const host = opts.host ?? "127.0.0.1";
  const seen: VerifyRequest[] = [];
  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const read = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
      req.on("error", reject);
    });

  const server = createServer(async (req, res) => {
    const path = new URL(req.url ?? "/", "http://local").pathname;
    if (path === "/turnstile/v0/api.js" && req.method === "GET") {
      res.writeHead(200, { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store" });
      res.end(CLIENT_SCRIPT);
      return;
    }
    if (path === "/turnstile/v0/siteverify") {
      if (req.method !== "POST") return send(res, 405, { success: false, "error-codes": ["bad-request"] });
      const contentType = String(req.headers["content-type"] ?? "");
      const body = parseBody(contentType, await read(req));
      if (!body) return send(res, 400, { success: false, "error-codes": ["bad-request"] });
      const { secret, response, remoteip, idempotency_key } = body;
      seen.push({ secret, response, remoteip, idempotency_key, contentType });
      if (seen.length > 200) seen.shift();
      return send(res, 200, verify(body));
    }
    if (path === "/__requests" && req.method === "GET") return send(res, 200, { requests: seen });
    if (path === "/__reset" && req.method === "POST") {
      seen.length = 0;
      return send(res, 200, { ok: true });
    }
    send(res, 404, { error: "not found" });
  });
  const port = await listen(server, opts.port ?? 0, host);
  const url = `http://${host}:${port}`;
  return {
    port,
    url,
    siteverifyUrl: `${url}/turnstile/v0/siteverify`,
    scriptUrl: `${url}/turnstile/v0/api.js?render=explicit`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { port: { type: "string", default: "8791" } } });
  const t = await startTurnstile({ port: Number(values.port) });
  console.log(`[turnstile] siteverify ${t.siteverifyUrl}, client script ${t.scriptUrl}`);
}
