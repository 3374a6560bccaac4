/**
 * Rotating the alert webhook's signing secret, for the tenant's secret key (`/v1`) and the admin
 * (`/admin/tenants/{id}`). The answer is the only place the new secret is ever shown.
 */
import { z } from "@hono/zod-openapi";
import { newRouter } from "../app.ts";
import { errors, jsonResponse } from "../openapi.ts";
import type { TenantScope } from "../tenants/scope.ts";
import { rotateWebhookSecret } from "./settings.ts";

export const RotatedWebhookSecret = z
  .object({
    tenant_id: z.string(),
    webhook_url: z.string(),
    webhook_secret: z.string().openapi({
      description:
        "Signs every POST to webhook_url: X-Chatedge-Signature: sha256=<hex HMAC-SHA256 of the body>. Shown once.",
    }),
  })
  .openapi("RotatedWebhookSecret");

/** POST /alert-settings/webhook-secret in a tenant scope. */
export const webhookSecretRoutes = (scope: TenantScope) =>
  newRouter().openapi(
    scope.route({
      method: "post",
      path: "/alert-settings/webhook-secret",
      tags: ["monitoring"],
      summary: "Rotate the alert webhook's signing secret; the new one is shown in this answer only",
      responses: { 200: jsonResponse(RotatedWebhookSecret, "The new secret"), ...errors(409) },
    }),
    async (c) => {
      const out = await rotateWebhookSecret(c.get("svc").dbh.db, c.get("tenant").id, c.get("actor"));
      return c.json(out, 200, { "Cache-Control": "no-store" });
    },
  );
