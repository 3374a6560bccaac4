/**
 * Tenant isolation sweep: every route that takes an id is tried with another tenant's ids and keys.
 *
 * Two tenants, A and B, each get a secret key, a publishable key, experiments and conversations
 * (open and ended, started by a server and by a browser visitor). Then, for every route in the live
 * /openapi.json whose path has a `{param}`:
 *   - tenant routes (/v1/...): A's secret and publishable keys with B's ids must get the error
 *     envelope (404, or 403 where the key kind is refused), and B's state must not change;
 *   - the same through B's own publishable key with another visitor: conversations are per visitor;
 *   - admin routes with a sub-resource: the admin token with A's tenant id in the path and B's
 *     sub-resource id must 404, and nothing of A or B changes;
 *   - every admin route: a tenant key instead of the admin token must get 401.
 * Finally each probe is sent with B's own credentials and must succeed, so no probe is vacuous.
 *
 * A new route with an id fails the first test until it has an entry in ID_ROUTES below.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { TEST_ADMIN_TOKEN } from "../local-services";
import { call, createKey, createTenant, query, send, sql, uniqueId } from "./helpers";
import { toolBody } from "./tools/helpers";

/** The ids of one tenant's objects a probe fills a path with. */
/** `doomed`: a second experiment, so the tenant's and the admin's deletes each have one to delete. */
/** `tool`, `doomedTool`: the same for registered tools; `source`, `doomedSource` for knowledge sources. */
type Ids = {
  tenant: string;
  conversation: string;
  experiment: string;
  doomed: string;
  key: string;
  tool: string;
  doomedTool: string;
  source: string;
  doomedSource: string;
  /** Console operators (src/operators): an agent every route can name, one to remove. */
  operator: string;
  doomedOperator: string;
  /** A model only this tenant's callers may name (allowed_models). */
  model: string;
};

type Entry = {
  /** Which credential the route takes, as its `security` in /openapi.json says. */
  auth: "tenant" | "admin";
  /** The path parameters, by name, from a bag of ids. */
  params: (ids: Ids) => Record<string, string>;
  /** The request body; it must be valid, so a probe reaches the handler and not the validator. */
  body?: unknown;
  /** Tenant routes: "refused" when publishable keys get 403 on the route whatever the ids. */
  publishable?: "allowed" | "refused";
  /**
   * What the owner gets sending the same request (the control that shows the probe is real); 400
   * for the purge, whose handler (past auth) refuses a confirmation that is not the tenant's id.
   * 403 and 409: live takeover (src/handoff), which only an operator session may hold and write in
   * (a key or the admin is refused after the conversation is found), and whose hand-back and
   * resolve find the sweep's conversation ended by then.
   */
  ownerStatus: 200 | 201 | 400 | 403 | 409;
};

/**
 * One entry per (method, path) with a `{param}` in /openapi.json. Admin routes whose only param is
 * the tenant `{id}` have no sub-resource to cross; they are still swept with tenant keys (401).
 * Admin routes with more params are also swept with the admin token on A's id and B's sub-resource.
 */
/** A valid knowledge source (a probe must reach the handler, not the validator). */
const KNOWLEDGE_BODY = { type: "text", title: "Sweep", content: "Written by the isolation sweep." };

const ID_ROUTES: Record<string, Entry> = {
  // admin: tenants
  "GET /admin/tenants/{id}": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "PATCH /admin/tenants/{id}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { custom_greeting: "patched by the isolation sweep" },
    ownerStatus: 200,
  },
  "DELETE /admin/tenants/{id}": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "POST /admin/tenants/{id}/purge": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { confirm: "the probe's own tenant id is checked against this" },
    ownerStatus: 400,
  },
  "POST /admin/tenants/{id}/keys": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { kind: "secret", name: "isolation sweep" },
    ownerStatus: 201,
  },
  "GET /admin/tenants/{id}/keys": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "DELETE /admin/tenants/{id}/keys/{keyId}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, keyId: i.key }),
    ownerStatus: 200,
  },
  "GET /admin/tenants/{id}/audit": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  // admin: usage and analytics
  "GET /admin/tenants/{id}/usage": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "GET /admin/tenants/{id}/analytics/dashboard": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  // admin: experiments
  "POST /admin/tenants/{id}/experiments": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: twoArms("created-by-sweep"),
    ownerStatus: 201,
  },
  "GET /admin/tenants/{id}/experiments": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  "GET /admin/tenants/{id}/experiments/{name}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.experiment }),
    ownerStatus: 200,
  },
  "PATCH /admin/tenants/{id}/experiments/{name}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.experiment }),
    body: { active: false },
    ownerStatus: 200,
  },
  "DELETE /admin/tenants/{id}/experiments/{name}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.experiment }),
    ownerStatus: 200,
  },
  "GET /admin/tenants/{id}/experiments/{name}/results": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.experiment }),
    ownerStatus: 200,
  },
  // admin: tools
  "POST /admin/tenants/{id}/tools": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: toolBody("created_by_sweep"),
    ownerStatus: 201,
  },
  "GET /admin/tenants/{id}/tools": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "GET /admin/tenants/{id}/tools/{name}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.tool }),
    ownerStatus: 200,
  },
  "PATCH /admin/tenants/{id}/tools/{name}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.tool }),
    body: { enabled: false },
    ownerStatus: 200,
  },
  "DELETE /admin/tenants/{id}/tools/{name}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.tool }),
    ownerStatus: 200,
  },
  "POST /admin/tenants/{id}/tools/{name}/secret": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, name: i.tool }),
    ownerStatus: 200,
  },
  // admin: monitoring
  "GET /admin/tenants/{id}/monitoring": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  "GET /admin/tenants/{id}/alerts": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "GET /admin/tenants/{id}/alert-settings": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  "PUT /admin/tenants/{id}/alert-settings": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { webhook_url: "https://hooks.example/isolation-sweep" },
    ownerStatus: 200,
  },
  // After the PUT above (same rank, kept in order): the owner has a webhook to rotate the secret of.
  "POST /admin/tenants/{id}/alert-settings/webhook-secret": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  // admin: the identity secret (verified users)
  "POST /admin/tenants/{id}/identity-secret": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  // admin: a visitor's export and erasure (src/privacy)
  "POST /admin/tenants/{id}/privacy/export": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { user_id: "isolation-sweep" },
    ownerStatus: 200,
  },
  "POST /admin/tenants/{id}/privacy/erase": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { user_id: "isolation-sweep", confirm: "isolation-sweep" },
    ownerStatus: 200,
  },
  // tenant: the OpenAI-compatible model list
  "GET /v1/models/{model}": {
    auth: "tenant",
    params: (i) => ({ model: i.model }),
    publishable: "refused",
    ownerStatus: 200,
  },
  // tenant: conversations
  "GET /v1/conversations/{id}": {
    auth: "tenant",
    params: (i) => ({ id: i.conversation }),
    publishable: "allowed",
    ownerStatus: 200,
  },
  // before /end below: a ticket is for a conversation that has not ended
  "POST /v1/conversations/{id}/live": {
    auth: "tenant",
    params: (i) => ({ id: i.conversation }),
    publishable: "allowed",
    ownerStatus: 200,
  },
  "POST /v1/conversations/{id}/messages": {
    auth: "tenant",
    params: (i) => ({ id: i.conversation }),
    body: { content: "written by the isolation sweep" },
    publishable: "allowed",
    ownerStatus: 200,
  },
  "POST /v1/conversations/{id}/end": {
    auth: "tenant",
    params: (i) => ({ id: i.conversation }),
    body: { resolved: false },
    publishable: "allowed",
    ownerStatus: 200,
  },
  "POST /v1/conversations/{id}/feedback": {
    auth: "tenant",
    params: (i) => ({ id: i.conversation }),
    body: { csat: 1, comment: "isolation sweep" },
    publishable: "allowed",
    ownerStatus: 200,
  },
  // tenant: experiments (secret keys only)
  "GET /v1/experiments/{name}": {
    auth: "tenant",
    params: (i) => ({ name: i.experiment }),
    publishable: "refused",
    ownerStatus: 200,
  },
  "PATCH /v1/experiments/{name}": {
    auth: "tenant",
    params: (i) => ({ name: i.experiment }),
    body: { active: false },
    publishable: "refused",
    ownerStatus: 200,
  },
  "DELETE /v1/experiments/{name}": {
    auth: "tenant",
    params: (i) => ({ name: i.doomed }),
    publishable: "refused",
    ownerStatus: 200,
  },
  "GET /v1/experiments/{name}/results": {
    auth: "tenant",
    params: (i) => ({ name: i.experiment }),
    publishable: "refused",
    ownerStatus: 200,
  },
  // tenant: tools (secret keys only)
  "GET /v1/tools/{name}": {
    auth: "tenant",
    params: (i) => ({ name: i.tool }),
    publishable: "refused",
    ownerStatus: 200,
  },
  "PATCH /v1/tools/{name}": {
    auth: "tenant",
    params: (i) => ({ name: i.tool }),
    body: { enabled: false },
    publishable: "refused",
    ownerStatus: 200,
  },
  "DELETE /v1/tools/{name}": {
    auth: "tenant",
    params: (i) => ({ name: i.doomedTool }),
    publishable: "refused",
    ownerStatus: 200,
  },
  "POST /v1/tools/{name}/secret": {
    auth: "tenant",
    params: (i) => ({ name: i.tool }),
    publishable: "refused",
    ownerStatus: 200,
  },
  // operators (src/operators): the admin side, then the tenant's own keys (secret keys only)
  "GET /admin/tenants/{id}/operators": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "POST /admin/tenants/{id}/operators": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { email: "invited-by-admin@example.com", name: "Sweep", role: "agent" },
    ownerStatus: 201,
  },
  "PATCH /admin/tenants/{id}/operators/{operator_id}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, operator_id: i.operator }),
    body: { name: "Renamed by the admin" },
    ownerStatus: 200,
  },
  "DELETE /admin/tenants/{id}/operators/{operator_id}/sessions": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, operator_id: i.operator }),
    ownerStatus: 200,
  },
  "DELETE /admin/tenants/{id}/operators/{operator_id}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, operator_id: i.operator }),
    ownerStatus: 200,
  },
  "PATCH /v1/operators/{operator_id}": {
    auth: "tenant",
    params: (i) => ({ operator_id: i.operator }),
    body: { name: "Renamed by a key" },
    publishable: "refused",
    ownerStatus: 200,
  },
  "DELETE /v1/operators/{operator_id}/sessions": {
    auth: "tenant",
    params: (i) => ({ operator_id: i.operator }),
    publishable: "refused",
    ownerStatus: 200,
  },
  "DELETE /v1/operators/{operator_id}": {
    auth: "tenant",
    params: (i) => ({ operator_id: i.doomedOperator }),
    publishable: "refused",
    ownerStatus: 200,
  },
  // knowledge (src/knowledge): the admin side, then the tenant's own keys (secret keys only)
  "POST /admin/tenants/{id}/knowledge/sources": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: KNOWLEDGE_BODY,
    ownerStatus: 201,
  },
  "GET /admin/tenants/{id}/knowledge/sources": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  "GET /admin/tenants/{id}/knowledge/sources/{sourceId}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, sourceId: i.source }),
    ownerStatus: 200,
  },
  "PUT /admin/tenants/{id}/knowledge/sources/{sourceId}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, sourceId: i.source }),
    body: KNOWLEDGE_BODY,
    ownerStatus: 200,
  },
  "DELETE /admin/tenants/{id}/knowledge/sources/{sourceId}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, sourceId: i.source }),
    ownerStatus: 200,
  },
  "GET /admin/tenants/{id}/knowledge/settings": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  "PATCH /admin/tenants/{id}/knowledge/settings": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    body: { unknown_answer_message: "patched by the isolation sweep" },
    ownerStatus: 200,
  },
  "GET /admin/tenants/{id}/knowledge/unanswered": {
    auth: "admin",
    params: (i) => ({ id: i.tenant }),
    ownerStatus: 200,
  },
  "GET /v1/knowledge/sources/{sourceId}": {
    auth: "tenant",
    params: (i) => ({ sourceId: i.source }),
    publishable: "refused",
    ownerStatus: 200,
  },
  "PUT /v1/knowledge/sources/{sourceId}": {
    auth: "tenant",
    params: (i) => ({ sourceId: i.source }),
    body: KNOWLEDGE_BODY,
    publishable: "refused",
    ownerStatus: 200,
  },
  "DELETE /v1/knowledge/sources/{sourceId}": {
    auth: "tenant",
    params: (i) => ({ sourceId: i.doomedSource }),
    publishable: "refused",
    ownerStatus: 200,
  },
  // the inbox (src/inbox): reads; `{id}` is the admin path's tenant, so the conversation is `{conversation_id}`
  "GET /admin/tenants/{id}/inbox": { auth: "admin", params: (i) => ({ id: i.tenant }), ownerStatus: 200 },
  "GET /admin/tenants/{id}/inbox/{conversation_id}": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, conversation_id: i.conversation }),
    ownerStatus: 200,
  },
  "GET /v1/inbox/{conversation_id}": {
    auth: "tenant",
    params: (i) => ({ conversation_id: i.conversation }),
    publishable: "refused",
    ownerStatus: 200,
  },
  // live takeover (src/handoff): last, after /end, so the owner's control finds the conversation ended
  "POST /v1/inbox/{conversation_id}/takeover": {
    auth: "tenant",
    params: (i) => ({ conversation_id: i.conversation }),
    publishable: "refused",
    ownerStatus: 403,
  },
  "POST /admin/tenants/{id}/inbox/{conversation_id}/takeover": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, conversation_id: i.conversation }),
    ownerStatus: 403,
  },
  "POST /v1/inbox/{conversation_id}/messages": {
    auth: "tenant",
    params: (i) => ({ conversation_id: i.conversation }),
    body: { content: "written by the isolation sweep" },
    publishable: "refused",
    ownerStatus: 403,
  },
  "POST /admin/tenants/{id}/inbox/{conversation_id}/messages": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, conversation_id: i.conversation }),
    body: { content: "written by the isolation sweep" },
    ownerStatus: 403,
  },
  "POST /v1/inbox/{conversation_id}/handback": {
    auth: "tenant",
    params: (i) => ({ conversation_id: i.conversation }),
    publishable: "refused",
    ownerStatus: 409,
  },
  "POST /admin/tenants/{id}/inbox/{conversation_id}/handback": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, conversation_id: i.conversation }),
    ownerStatus: 409,
  },
  "POST /v1/inbox/{conversation_id}/resolve": {
    auth: "tenant",
    params: (i) => ({ conversation_id: i.conversation }),
    publishable: "refused",
    ownerStatus: 409,
  },
  "POST /admin/tenants/{id}/inbox/{conversation_id}/resolve": {
    auth: "admin",
    params: (i) => ({ id: i.tenant, conversation_id: i.conversation }),
    ownerStatus: 409,
  },
};

const SHARED_EXPERIMENT = "shared-name";
const METHODS = ["get", "put", "post", "patch", "delete"];

function twoArms(name: string) {
  return {
    name,
    variants: [
      { name: "control", overrides: {} },
      { name: "B", overrides: {} },
    ],
    split: { control: 0.5, B: 0.5 },
  };
}

type Fixture = {
  id: string;
  origin: string;
  sk: { id: string; key: string };
  pk: { id: string; key: string };
  /** An experiment name only this tenant has, and the one both have. */
  onlyExperiment: string;
  doomedExperiment: string;
  /** Tool names only this tenant has (tool routes take names). */
  onlyTool: string;
  doomedTool: string;
  /** Knowledge source ids (uuids) of this tenant. */
  onlySource: string;
  doomedSource: string;
  /** Operator ids, and the owner's console session the operator sweep signs in with. */
  onlyOperator: string;
  doomedOperator: string;
  owner: { cookie: string; csrf: string };
  onlyModel: string;
  /** The visitor who started the browser conversations, and another visitor of the same tenant. */
  visitorToken: string;
  otherVisitorToken: string;
  sharedExperimentId: string;
  conversations: {
    serverOpen: string;
    serverEnded: string;
    visitorOpen: string;
    visitorEnded: string;
  };
};

async function ok(res: Response, status: number, what: string) {
  if (res.status !== status) throw new Error(`${what}: ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** A tenant with keys of both kinds, two experiments and four conversations. */
async function tenantWithEverything(stem: string, onlyModel: string): Promise<Fixture> {
  const origin = `https://${stem}.example`;
  const t = await createTenant({
    tenant_id: uniqueId(stem),
    model: "mock",
    allowed_origins: [origin],
    allowed_models: [onlyModel],
  });
  const id = t.tenant_id;
  const sk = await createKey(id, "secret");
  const invite = async (role: "owner" | "agent") => {
    const body = { email: `${role}-${uniqueId("op")}@example.com`, name: role, role };
    const res = await ok(await send("POST", "/v1/operators", sk.key, body), 201, "operator");
    return res as { operator: { id: string }; invite_url: string };
  };
  const [ownerInvite, onlyOperator, doomedOperator] = [
    await invite("owner"),
    (await invite("agent")).operator.id,
    (await invite("agent")).operator.id,
  ];
  const accepted = await call("/operator/invitations/accept", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      token: ownerInvite.invite_url.split("#invite=")[1],
      password: "isolation sweep pw",
    }),
  });
  const owner = {
    cookie: (accepted.headers.get("set-cookie") ?? "").split(";")[0] as string,
    csrf: ((await ok(accepted, 200, "accept")) as { csrf_token: string }).csrf_token,
  };
  const pk = await createKey(id, "publishable");
  const onlyExperiment = `only-${id}`.slice(0, 40);
  await ok(await send("POST", "/v1/experiments", sk.key, twoArms(onlyExperiment)), 201, "experiment");
  const doomedExperiment = `doomed-${id}`.slice(0, 40);
  await ok(await send("POST", "/v1/experiments", sk.key, twoArms(doomedExperiment)), 201, "experiment");
  const onlyTool = `only_${id}`.slice(0, 64);
  await ok(await send("POST", "/v1/tools", sk.key, toolBody(onlyTool)), 201, "tool");
  const doomedTool = `doomed_${id}`.slice(0, 64);
  await ok(await send("POST", "/v1/tools", sk.key, toolBody(doomedTool)), 201, "tool");
  const source = async () =>
    (await ok(await send("POST", "/v1/knowledge/sources", sk.key, KNOWLEDGE_BODY), 201, "source"))
      .id as string;
  const [onlySource, doomedSource] = [await source(), await source()];
  const shared = await ok(
    await send("POST", "/v1/experiments", sk.key, twoArms(SHARED_EXPERIMENT)),
    201,
    "shared experiment",
  );
  const start = async (key: string, body: unknown, headers: Record<string, string> = {}) =>
    (await ok(await send("POST", "/v1/conversations", key, body, headers), 201, "start")).id as string;
  // Two browser visitors: the platform issues each its token when it first starts a conversation.
  const tokenOf = async () =>
    (await ok(await send("POST", "/v1/conversations", pk.key, {}, { origin }), 201, "visitor"))
      .visitor_token as string;
  const [visitorToken, otherVisitorToken] = await Promise.all([tokenOf(), tokenOf()]);
  const visitor = { origin, "x-visitor-token": visitorToken };
  const say = async (key: string, conv: string, headers: Record<string, string> = {}) =>
    ok(
      await send("POST", `/v1/conversations/${conv}/messages`, key, { content: "hello" }, headers),
      200,
      "say",
    );

  const [serverOpen, serverEnded, visitorOpen, visitorEnded] = await Promise.all([
    (async () => {
      const conv = await start(sk.key, { user: "bob" });
      await say(sk.key, conv);
      return conv;
    })(),
    (async () => {
      const conv = await start(sk.key, { user: "bob" });
      await say(sk.key, conv);
      await ok(await send("POST", `/v1/conversations/${conv}/end`, sk.key, { resolved: true }), 200, "end");
      await ok(await send("POST", `/v1/conversations/${conv}/feedback`, sk.key, { csat: 5 }), 200, "fb");
      return conv;
    })(),
    (async () => {
      const conv = await start(pk.key, {}, visitor);
      await say(pk.key, conv, visitor);
      return conv;
    })(),
    (async () => {
      const conv = await start(pk.key, {}, visitor);
      const end = await send("POST", `/v1/conversations/${conv}/end`, pk.key, { resolved: true }, visitor);
      await ok(end, 200, "visitor end");
      return conv;
    })(),
  ]);
  return {
    id,
    origin,
    sk: { id: sk.id, key: sk.key },
    pk: { id: pk.id, key: pk.key },
    onlyExperiment,
    doomedExperiment,
    onlyTool,
    doomedTool,
    onlySource,
    doomedSource,
    onlyOperator,
    doomedOperator,
    owner,
    onlyModel,
    visitorToken,
    otherVisitorToken,
    sharedExperimentId: shared.id as string,
    conversations: { serverOpen, serverEnded, visitorOpen, visitorEnded },
  };
}

/** Everything of a tenant a probe could change: its rows, and each conversation as its owner sees it. */
async function stateOf(t: Fixture) {
  const [db] = await query<{ state: unknown }>(sql`select json_build_object(
    'tenant', (select row_to_json(x) from tenants x where x.id = ${t.id}),
    'keys', (select json_agg(k order by k.id) from api_keys k where k.tenant_id = ${t.id}),
    'experiments', (select json_agg(e order by e.name) from experiments e where e.tenant_id = ${t.id}),
    'tools', (select json_agg(x order by x.name) from tools x where x.tenant_id = ${t.id}),
    'knowledge', (select json_agg(json_build_array(k.id, k.title, k.version) order by k.id)
                  from knowledge_sources k where k.tenant_id = ${t.id}),
    'operators', (select json_agg(json_build_array(o.id, o.name, o.role, o.removed_at) order by o.id)
                  from operators o where o.tenant_id = ${t.id}),
    'sessions', (select json_agg(json_build_array(x.id, x.revoked_at) order by x.id)
                 from operator_sessions x where x.tenant_id = ${t.id}),
    'audit', (select json_agg(json_build_array(a.id, a.action, a.target, a.actor) order by a.id)
              from audit_log a where a.tenant_id = ${t.id})
  ) as state`);
  const conversations = await Promise.all(
    Object.values(t.conversations).map(async (conv) => {
      const res = await send("GET", `/v1/conversations/${conv}`, t.sk.key);
      return { conv, status: res.status, body: await res.json() };
    }),
  );
  return { db: db?.state, conversations };
}

/** Fills `{name}` params; fails on any the entry did not give. */
function fill(path: string, params: Record<string, string>): string {
  return path.replace(/\{([^}]+)\}/g, (_, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`${path}: no value for {${name}}`);
    return encodeURIComponent(v);
  });
}

const pathParams = (path: string) => [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1] as string).sort();

const CODE_OF: Record<number, string> = { 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND" };
const OPENAI_TYPE_OF: Record<number, string> = {
  401: "authentication_error",
  403: "permission_error",
  404: "not_found_error",
};

type Probe = {
  label: string;
  route: string;
  path: string;
  /** A bearer token; none for the console's operator sessions (a cookie in `headers`). */
  token?: string;
  body?: unknown;
  headers?: Record<string, string>;
  expect: number;
};

/** Sends one probe; answers a problem description, or undefined when it was refused as expected. */
async function run(p: Probe): Promise<string | undefined> {
  const [method] = p.route.split(" ") as [string];
  const res = await send(method, p.path, p.token, p.body, p.headers);
  const text = await res.text();
  const where = `[${p.label}] ${method} ${p.path} (${p.route})`;
  if (res.status !== p.expect) {
    return `${where}: answered ${res.status}, expected ${p.expect}: ${text.slice(0, 300)}`;
  }
  let body: { error?: { code?: unknown; message?: unknown; requestId?: unknown } };
  try {
    body = JSON.parse(text);
  } catch {
    return `${where}: not JSON: ${text.slice(0, 300)}`;
  }
  const e = body.error;
  // The paths OpenAI's clients call answer in OpenAI's error shape (src/app.ts).
  if (/^\/v1\/(?:models|chat\/completions)(?:\/|$)/.test(p.path)) {
    const o = e as { type?: unknown; message?: unknown; request_id?: unknown } | undefined;
    const type = OPENAI_TYPE_OF[p.expect];
    if (typeof o?.message !== "string" || typeof o.request_id !== "string" || o.type !== type)
      return `${where}: not OpenAI's error shape with type ${type}: ${text.slice(0, 300)}`;
    return undefined;
  }
  if (!e || typeof e.message !== "string" || typeof e.requestId !== "string" || e.requestId === "")
    return `${where}: not an error envelope: ${text.slice(0, 300)}`;
  const code = CODE_OF[p.expect];
  if (e.code !== code) return `${where}: envelope code ${String(e.code)}, expected ${code}`;
  return undefined;
}

/** Fails with every problem listed, one a line. */
function noProblems(problems: string[]) {
  if (problems.length > 0) expect.fail(`${problems.length} problem(s):\n${problems.join("\n")}`);
}

/** Runs the probes (duplicates once, a few at a time) and answers every problem, in probe order. */
async function sweep(probes: Probe[]): Promise<string[]> {
  const seen = new Set<string>();
  const unique = probes.filter((p) => {
    const k = `${p.label} ${p.token} ${p.route} ${p.path}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  const out: (string | undefined)[] = new Array(unique.length);
  let next = 0;
  const worker = async () => {
    while (next < unique.length) {
      const i = next++;
      out[i] = await run(unique[i] as Probe);
    }
  };
  await Promise.all(Array.from({ length: 6 }, worker));
  return out.filter((p): p is string => p !== undefined);
}

type Operation = { security?: Record<string, string[]>[] };
type Doc = { paths: Record<string, Record<string, Operation>> };

let a: Fixture;
let b: Fixture;
/** Every documented operation: "METHOD /path" -> its operation. */
let operations: Map<string, Operation>;

/**
 * `/operator/...` mounts the same routers as `/v1/...` for operators' console sessions
 * (src/tenants/scope.ts): such a route is swept with its `/v1` twin's ids and body.
 */
function operatorTwin(route: string): Entry | undefined {
  const [method, path] = route.split(" ") as [string, string];
  if (!path.startsWith("/operator/")) return undefined;
  return ID_ROUTES[`${method} /v1/${path.slice("/operator/".length)}`];
}

const sessionHeaders = (t: Fixture) => ({ cookie: t.owner.cookie, "x-csrf-token": t.owner.csrf });

const idRoutesOf = (auth: Entry["auth"]) =>
  Object.entries(ID_ROUTES).filter(([route, e]) => e.auth === auth && operations.has(route));

/** B's ids, one bag per conversation (experiment routes dedupe to one probe per credential). */
const bagsOf = (t: Fixture): Ids[] =>
  Object.values(t.conversations).map((conversation) => ({
    tenant: t.id,
    conversation,
    experiment: t.onlyExperiment,
    doomed: t.doomedExperiment,
    key: t.sk.id,
    tool: t.onlyTool,
    doomedTool: t.doomedTool,
    source: t.onlySource,
    doomedSource: t.doomedSource,
    operator: t.onlyOperator,
    doomedOperator: t.doomedOperator,
    model: t.onlyModel,
  }));

describe("tenant isolation sweep", () => {
  beforeAll(async () => {
    [a, b] = await Promise.all([
      tenantWithEverything("iso-a", "gpt-4o"),
      tenantWithEverything("iso-b", "claude-haiku"),
    ]);
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Doc;
    operations = new Map();
    for (const [path, item] of Object.entries(doc.paths))
      for (const [method, op] of Object.entries(item))
        if (METHODS.includes(method)) operations.set(`${method.toUpperCase()} ${path}`, op);
  });

  it("covers every documented route that takes an id", () => {
    const documented = [...operations.keys()].filter((r) => r.includes("{"));
    const missing = documented.filter((r) => !(r in ID_ROUTES) && !operatorTwin(r));
    const stale = Object.keys(ID_ROUTES).filter((r) => !operations.has(r));
    const wrong: string[] = [];
    const sample: Ids = {
      tenant: "t",
      conversation: "c",
      experiment: "e",
      doomed: "d",
      key: "k",
      tool: "x",
      doomedTool: "y",
      source: "s",
      doomedSource: "z",
      operator: "o",
      doomedOperator: "p",
      model: "m",
    };
    for (const [route, e] of Object.entries(ID_ROUTES)) {
      const op = operations.get(route);
      if (!op) continue;
      const schemes = (op.security ?? []).flatMap((s) => Object.keys(s));
      const auth = schemes.includes("AdminToken")
        ? "admin"
        : schemes.includes("TenantKey")
          ? "tenant"
          : "none";
      if (auth !== e.auth) wrong.push(`${route}: documented security is ${auth}, the table says ${e.auth}`);
      const path = route.split(" ")[1] as string;
      const given = Object.keys(e.params(sample)).sort();
      if (given.join() !== pathParams(path).join())
        wrong.push(
          `${route}: the table fills {${given.join("},{")}}, the path has {${pathParams(path).join("},{")}}`,
        );
      if (e.auth === "tenant" && !e.publishable)
        wrong.push(`${route}: say whether publishable keys may call it`);
    }
    for (const route of documented.filter((r) => !(r in ID_ROUTES) && operatorTwin(r))) {
      const schemes = (operations.get(route)?.security ?? []).flatMap((s) => Object.keys(s));
      if (schemes.join() !== "OperatorSession")
        wrong.push(`${route}: documented security is ${schemes.join()}`);
    }
    // An entry for a route that is gone is skipped by every sweep: a warning, not a failure.
    for (const r of stale) console.warn(`isolation sweep: ${r} is in ID_ROUTES but not in /openapi.json`);
    const report = [
      ...missing.map((r) => `not in ID_ROUTES (add an entry in test/worker/isolation.test.ts): ${r}`),
      ...wrong,
    ];
    noProblems(report);
  });

  it("tenant keys do not reach another tenant's objects", async () => {
    const before = { a: await stateOf(a), b: await stateOf(b) };
    const probes: Probe[] = [];
    for (const [route, e] of idRoutesOf("tenant")) {
      for (const ids of bagsOf(b)) {
        const path = fill(route.split(" ")[1] as string, e.params(ids));
        probes.push({ label: "A's secret key", route, path, token: a.sk.key, body: e.body, expect: 404 });
        // Even the same visitor id as B's visitor: visitors are per tenant.
        probes.push({
          label: "A's publishable key",
          route,
          path,
          token: a.pk.key,
          body: e.body,
          headers: { origin: a.origin, "x-visitor-token": a.visitorToken },
          expect: e.publishable === "refused" ? 403 : 404,
        });
      }
    }
    const problems = await sweep(probes);
    // The stateless API names a conversation in a header; another tenant's id must not touch it.
    const completion = await send(
      "POST",
      "/v1/chat/completions",
      a.sk.key,
      { model: "mock", messages: [{ role: "user", content: "hi" }] },
      { "x-conversation-id": b.conversations.serverOpen },
    );
    await completion.text();
    expect(completion.status).toBe(200);
    noProblems(problems);
    expect({ a: await stateOf(a), b: await stateOf(b) }, "A's or B's state changed").toEqual(before);
  });

  it("a browser visitor does not reach another visitor's conversations of its own tenant", async () => {
    const before = await stateOf(b);
    const probes: Probe[] = [];
    const labels: Record<string, string> = {
      serverOpen: "open server conversation",
      serverEnded: "ended server conversation",
      visitorOpen: "open visitor conversation",
      visitorEnded: "ended visitor conversation",
    };
    for (const [route, e] of idRoutesOf("tenant")) {
      for (const [which, conversation] of Object.entries(b.conversations)) {
        const path = fill(route.split(" ")[1] as string, e.params({ ...bagsOf(b)[0]!, conversation }));
        probes.push({
          label: e.publishable === "refused" ? "other visitor" : `other visitor, ${labels[which]}`,
          route,
          path,
          token: b.pk.key,
          body: e.body,
          headers: { origin: b.origin, "x-visitor-token": b.otherVisitorToken },
          expect: e.publishable === "refused" ? 403 : 404,
        });
      }
    }
    const problems = await sweep(probes);
    noProblems(problems);
    expect(await stateOf(b), "B's state changed").toEqual(before);
    // The control: B's visitor itself reads its conversation through the same key.
    const own = await send("GET", `/v1/conversations/${b.conversations.visitorOpen}`, b.pk.key, undefined, {
      origin: b.origin,
      "x-visitor-token": b.visitorToken,
    });
    expect(own.status).toBe(200);
    // B's visitor token is nobody to A's publishable key.
    const crossed = await send(
      "GET",
      `/v1/conversations/${b.conversations.visitorOpen}`,
      a.pk.key,
      undefined,
      {
        origin: a.origin,
        "x-visitor-token": b.visitorToken,
      },
    );
    expect(crossed.status).toBe(401);
  });

  it("operator sessions do not reach another tenant's objects, and keys do not open /operator", async () => {
    const before = { a: await stateOf(a), b: await stateOf(b) };
    const probes: Probe[] = [];
    const reads: [string, string, Entry][] = [];
    for (const route of operations.keys()) {
      const e = operatorTwin(route);
      if (!e) continue;
      const path = fill(route.split(" ")[1] as string, e.params(bagsOf(b)[0]!));
      // A's owner, with its own valid CSRF token: the tenant comes from the session, never the path.
      probes.push({
        label: "A's owner session",
        route,
        path,
        body: e.body,
        headers: sessionHeaders(a),
        expect: 404,
      });
      probes.push({
        label: "B's secret key on /operator",
        route,
        path,
        token: b.sk.key,
        body: e.body,
        expect: 401,
      });
      if (route.startsWith("GET ")) reads.push([route, path, e]);
    }
    expect(probes.length).toBeGreaterThan(0);
    const problems = await sweep(probes);
    // The control: B's own owner reads the same objects through the same paths.
    for (const [route, path, e] of reads) {
      const res = await send("GET", path, undefined, undefined, sessionHeaders(b));
      if (res.status !== e.ownerStatus)
        problems.push(`${route}: B's owner got ${res.status}: ${await res.text()}`);
    }
    noProblems(problems);
    expect({ a: await stateOf(a), b: await stateOf(b) }, "A's or B's state changed").toEqual(before);
  });

  it("admin sub-resources are found only under their own tenant", async () => {
    const before = { a: await stateOf(a), b: await stateOf(b) };
    const probes: Probe[] = [];
    for (const [route, e] of idRoutesOf("admin")) {
      const path = route.split(" ")[1] as string;
      if (pathParams(path).length < 2) continue; // only the tenant id: nothing to cross
      // A's tenant id in the path, B's key (either kind) or experiment below it.
      for (const key of [b.sk.id, b.pk.id]) {
        const ids: Ids = { ...bagsOf(b)[0]!, tenant: a.id, key };
        probes.push({
          label: "admin token, A's tenant id",
          route,
          path: fill(path, e.params(ids)),
          token: TEST_ADMIN_TOKEN,
          body: e.body,
          expect: 404,
        });
      }
    }
    expect(probes.length).toBeGreaterThan(0);
    const problems = await sweep(probes);
    noProblems(problems);
    expect({ a: await stateOf(a), b: await stateOf(b) }, "A's or B's state changed").toEqual(before);
  });

  it("refuses tenant keys on every admin route", async () => {
    const before = { a: await stateOf(a), b: await stateOf(b) };
    const probes: Probe[] = [];
    for (const route of operations.keys()) {
      const path = route.split(" ")[1] as string;
      if (!path.startsWith("/admin")) continue;
      const e = ID_ROUTES[route];
      // B's own ids (routes without path ids get B's as ?tenant_id=): a tenant key that passed
      // here would act on B for real.
      const filled = e ? fill(path, e.params(bagsOf(b)[0]!)) : `${path}?tenant_id=${b.id}`;
      const body = e ? e.body : route.startsWith("POST") ? { tenant_id: b.id } : undefined;
      probes.push({
        label: "A's secret key on admin",
        route,
        path: filled,
        token: a.sk.key,
        body,
        expect: 401,
      });
      probes.push({
        label: "B's secret key on admin",
        route,
        path: filled,
        token: b.sk.key,
        body,
        expect: 401,
      });
      probes.push({
        label: "A's publishable key on admin",
        route,
        path: filled,
        token: a.pk.key,
        body,
        headers: { origin: a.origin, "x-visitor-token": a.visitorToken },
        expect: 401,
      });
    }
    const problems = await sweep(probes);
    noProblems(problems);
    expect({ a: await stateOf(a), b: await stateOf(b) }, "A's or B's state changed").toEqual(before);
  });

  it("a name both tenants use resolves to the caller's own object", async () => {
    for (const t of [a, b]) {
      const viaKey = await send("GET", `/v1/experiments/${SHARED_EXPERIMENT}`, t.sk.key);
      expect(viaKey.status).toBe(200);
      expect(((await viaKey.json()) as { id: string }).id).toBe(t.sharedExperimentId);
      const viaAdmin = await send(
        "GET",
        `/admin/tenants/${t.id}/experiments/${SHARED_EXPERIMENT}`,
        TEST_ADMIN_TOKEN,
      );
      expect(viaAdmin.status).toBe(200);
      expect(((await viaAdmin.json()) as { id: string }).id).toBe(t.sharedExperimentId);
    }
  });

  it("routes without ids answer only about the key's own tenant", async () => {
    const bIds = [
      b.id,
      b.sk.id,
      b.pk.id,
      b.onlyExperiment,
      b.doomedExperiment,
      b.sharedExperimentId,
      ...Object.values(b.conversations),
    ];
    const problems: string[] = [];
    let checked = 0;
    for (const route of operations.keys()) {
      const [method, path] = route.split(" ") as [string, string];
      const op = operations.get(route);
      const tenantRoute = (op?.security ?? []).some((s) => "TenantKey" in s);
      if (method !== "GET" || path.includes("{") || !tenantRoute) continue;
      checked += 1;
      const res = await send("GET", path, a.sk.key);
      const text = await res.text();
      if (res.status !== 200) problems.push(`${route}: ${res.status} ${text.slice(0, 200)}`);
      for (const id of bIds) if (text.includes(id)) problems.push(`${route}: A's key sees B's ${id}`);
    }
    expect(checked).toBeGreaterThan(0);
    noProblems(problems);
  });

  // Last: it changes B. Every probe above, sent by B's own credentials, succeeds, so the probes
  // reach real objects with valid requests and a route that ignored the tenant would have been caught.
  it("the probes are real: B's own credentials succeed with the same requests", async () => {
    const rank = (route: string) => {
      const [method, path] = route.split(" ") as [string, string];
      // Reads first, then writes, then the key's deletes while the key lives, then the admin's
      // (the key's revocation, then the tenant's own deactivation last of all).
      if (method === "GET") return 0;
      if (method !== "DELETE") return 1000;
      return ID_ROUTES[route]?.auth === "tenant" ? 1500 : 3000 - path.length;
    };
    const routes = Object.keys(ID_ROUTES)
      .filter((r) => operations.has(r))
      .sort((x, y) => rank(x) - rank(y));
    const problems: string[] = [];
    const ids = bagsOf(b)[0]!;
    for (const route of routes) {
      const e = ID_ROUTES[route]!;
      const [method, path] = route.split(" ") as [string, string];
      const token = e.auth === "admin" ? TEST_ADMIN_TOKEN : b.sk.key;
      const res = await send(method, fill(path, e.params(ids)), token, e.body);
      const text = await res.text();
      if (res.status !== e.ownerStatus)
        problems.push(
          `${route}: the owner got ${res.status}, expected ${e.ownerStatus}: ${text.slice(0, 300)}`,
        );
    }
    noProblems(problems);
  });
});
