import type { MiddlewareHandler } from "hono";
import { type App, type AppEnv, newApp } from "./app";
import { conversations } from "./chat/conversation-routes";
import { openAiChat } from "./chat/openai-routes";
import { liveRoutes } from "./handoff/live";
import { health } from "./health";
import { tenantPublic } from "./tenants/public-routes";

// Preflights carry no key, so they cannot know the tenant: answer them openly and let the real
// request decide (tenantAuth only grants Access-Control-Allow-Origin to allowed origins).
const preflight: MiddlewareHandler<AppEnv> = async (c, next) => {
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
};

/** Mounts the chat's routes and the `/v1` preflight answer: first, in both apps. */
export function mountChat(app: App): void {
  app.use("/v1/*", preflight);
  app.route("/", health);
  app.route("/v1", tenantPublic);
  app.route("/v1", openAiChat);
  app.route("/v1", conversations);
  // Live sockets (src/handoff/live.ts): a visitor's ticket and an operator's session, no API key.
  app.route("/", liveRoutes);
}

/** The app for chat paths alone (`isChatPath`). */
export function buildChatApp(): App {
  const app = newApp();
  mountChat(app);
  return app;
}
