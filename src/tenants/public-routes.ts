import { createRoute } from "@hono/zod-openapi";
import { newRouter } from "../app";
import { tenantAuth } from "../auth/middleware";
import { errors, jsonResponse, tenantSecurity } from "../openapi";
import { PublicConfig } from "./chat-schemas";

const configRoute = createRoute({
  method: "get",
  path: "/config",
  tags: ["tenant"],
  security: tenantSecurity,
  middleware: [tenantAuth],
  summary: "What a widget needs to greet a visitor",
  responses: { 200: jsonResponse(PublicConfig, "The tenant's public configuration"), ...errors(401, 403) },
});

/** Tenant-key routes about the tenant itself. */
export const tenantPublic = newRouter().openapi(configRoute, (c) => {
  const t = c.get("tenant");
  const turnstile =
    t.turnstileSecretKey && t.turnstileSiteKey
      ? { site_key: t.turnstileSiteKey, script_url: c.get("svc").env.TURNSTILE_SCRIPT_URL }
      : null;
  // `?? null`: a configuration cached before the widget_* columns existed lacks them.
  const widget = {
    title: t.widgetTitle ?? t.name,
    accent_color: t.widgetAccentColor ?? null,
    avatar_url: t.widgetAvatarUrl ?? null,
    position: t.widgetPosition ?? "bottom-right",
    locale: t.widgetLocale ?? null,
  };
  return c.json(
    { tenant_id: t.id, name: t.name, greeting: t.customGreeting, model: t.model, widget, turnstile },
    200,
  );
});
