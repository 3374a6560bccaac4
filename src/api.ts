import { usageRoutes } from "./admission/routes";
import { adminAnalytics, dashboardRoutes } from "./analytics/routes";
import { mountChat } from "./api-chat";
import { newApp } from "./app";
import { identitySecretRoutes } from "./chat/identity-secret";
import { docsPage } from "./docs";
import { experimentRoutes } from "./experiments/routes";
import { handoffRoutes } from "./handoff/routes";
import { inboxRoutes } from "./inbox/routes";
import { knowledgeRoutes } from "./knowledge/routes";
import { adminMonitoring, monitoringRoutes } from "./monitoring/routes";
import { webhookSecretRoutes } from "./monitoring/webhook-secret";
import { operatorRoutes, operatorSessions } from "./operators/routes";
import { privacyRoutes } from "./privacy/routes";
import { adminTenants } from "./tenants/admin-routes";
import { mountTenantScoped } from "./tenants/scope";
import { toolRoutes } from "./tools/routes";

/** Builds the whole API; every feature's router is mounted here and documented at /openapi.json. */
export function buildApp() {
  const app = newApp();
  // The chat's routes first, as the chat app has them (src/api-chat.ts).
  mountChat(app);
  app.route("/admin", adminTenants);
  app.route("/admin", adminAnalytics);
  app.route("/admin", adminMonitoring);
  app.route("/operator", operatorSessions);
  // The tenant's own business: each router is declared once, mounted under /v1 for its secret
  // keys and under /admin/tenants/{id} for the admin (src/tenants/scope.ts).
  for (const routes of [
    usageRoutes,
    dashboardRoutes,
    experimentRoutes,
    monitoringRoutes,
    webhookSecretRoutes,
    identitySecretRoutes,
    toolRoutes,
    operatorRoutes,
    knowledgeRoutes,
    privacyRoutes,
    handoffRoutes,
    inboxRoutes,
  ]) {
    mountTenantScoped(app, routes);
  }

  app.openAPIRegistry.registerComponent("securitySchemes", "AdminToken", {
    type: "http",
    scheme: "bearer",
    description: "The ADMIN_TOKEN secret",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "OperatorSession", {
    type: "apiKey",
    in: "cookie",
    name: "__Host-chatedge_session",
    description: "A console session (POST /operator/session); writes also need X-CSRF-Token",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "TenantKey", {
    type: "http",
    scheme: "bearer",
    description: "A tenant API key: sk_... (servers) or pk_... (browsers, allowed origins only)",
  });
  // Made once per isolate: the document is the same for every caller, and making it walks every
  // route's schemas, which no credential-free route should do per request.
  let document: string | undefined;
  app.get("/openapi.json", (c) => {
    document ??= JSON.stringify(
      app.getOpenAPI31Document({
        openapi: "3.1.0",
        info: {
          title: "chatedge API",
          version: "0.1.0",
          description:
            "Multi-tenant chatbot platform at the edge. Errors share one envelope: {error:{code,message,requestId}}; /v1/chat/completions and /v1/models answer in OpenAI's {error:{message,type,param,code}}.",
        },
      }),
    );
    return c.body(document, 200, { "Content-Type": "application/json" });
  });
  app.get("/docs", docsPage);
  return app;
}
