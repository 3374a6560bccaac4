/**
 * An example chatedge tool: looks up an order's status in a small fixture (src/orders.json).
 * Copy this folder, replace the lookup with a call to your own order system, and deploy it with
 * wrangler (README.md here). chatedge POSTs `{tool, arguments, tenant, conversation, request_id, call_id,
 * user}` signed with the tool's secret; this worker refuses anything not signed with TOOL_SECRET. Its
 * orders have no owners; a lookup of someone's account should also check that the order is `user`'s
 * (a `user:<id>` the tenant established; `visitor:` and `key:` ids name no account).
 */
import orders from "./orders.json";
import { verifyRequest } from "./verify";

export interface Env {
  /** The tool's secret, as chatedge showed it at registration: `wrangler secret put TOOL_SECRET`. */
  TOOL_SECRET: string;
}

type Order = (typeof orders)[keyof typeof orders];
const ORDERS: Record<string, Order> = orders;

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (request.method !== "POST") return json({ error: "POST only" }, 405);
    if (!env.TOOL_SECRET) return json({ error: "TOOL_SECRET is not set" }, 500);
    const verified = await verifyRequest(request, env.TOOL_SECRET);
    if (!verified.ok) return json({ error: `not a chatedge request (${verified.reason})` }, 401);
    let call: { arguments?: { order_id?: unknown } };
    try {
      call = JSON.parse(verified.body);
    } catch {
      return json({ error: "body is not JSON" }, 400);
    }
    const id = String(call.arguments?.order_id ?? "")
      .replace(/^#/, "")
      .trim();
    const order = ORDERS[id];
    // A missing order is an answer, not an error: the model should tell the visitor so.
    if (!order) return json({ order_id: id, found: false });
    return json({ order_id: id, found: true, ...order });
  },
} satisfies ExportedHandler<Env>;
