import { usageRoutes } from "./admission/routes";
import { adminAnalytics, dashboardRoutes } from "./analytics/routes";
import { newApp } from "./app";
import { conversations } from "./chat/conversation-routes";
import { identitySecretRoutes } from "./chat/identity-secret";
import { openAiChat } from "./chat/openai-routes";
import { docsPage } from "./docs";
import { experimentRoutes } from "./experiments/routes";
import { liveRoutes } from "./handoff/live";
import { handoffRoutes } from "./handoff/routes";
import { health } from "./health";
import { inboxRoutes } from "./inbox/routes";
import { knowledgeRoutes } from "./knowledge/routes";
import { adminMonitoring, monitoringRoutes } from "./monitoring/routes";
import { webhookSecretRoutes } from "./monitoring/webhook-secret";
import { operatorRoutes, operatorSessions } from "./operators/routes";
import { privacyRoutes } from "./privacy/routes";
import { adminTenants } from "./tenants/admin-routes";
import { tenantPublic } from "./tenants/public-routes";
import { mountTenantScoped } from "./tenants/scope";
import { toolRoutes } from "./tools/routes";

/** Builds the whole API; every feature's router is mounted here and documented at /openapi.json. */
export function buildApp() {
  const app = newApp();
  app.use("/v1/*", async (c, next) => {
    // Preflights carry no key, so they cannot know the tenant: answer them openly and let the
    // real request decide (tenantAuth only grants Access-Control-Allow-Origin to allowed origins).
    if (c.req.method !== "OPTIONS") return next();
    const origin = c.req.header("origin");
    if (!origin) return next();
    return c.body(null, 204, {
      "Access-Control-Allow-Origin": origin,
      "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
      // X-Visitor-Token: the widget's signed visitor identity (publishable keys need it).
      "Access-Control-Allow-Headers":
        "Authorization, Content-Type, X-Request-Id, X-Visitor-Token, X-Conversation-Id",
      "Access-Control-Max-Age": "600",
      Vary: "Origin",
    });
  });
  app.route("/", health);
  app.route("/admin", adminTenants);
  app.route("/v1", tenantPublic);
  app.route("/v1", openAiChat);
  app.route("/v1", conversations);
  // Live sockets (src/handoff/live.ts): a visitor's ticket and an operator's session, no API key.
  app.route("/", liveRoutes);
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
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "chatedge API",
      version: "0.1.0",
      description:
        "Multi-tenant chatbot platform at the edge. Errors share one envelope: {error:{code,message,requestId}}; /v1/chat/completions and /v1/models answer in OpenAI's {error:{message,type,param,code}}.",
    },
  });
  app.get("/docs", docsPage);
  return app;
}
