/**
 * The tenant's identity secret: its server signs logged-in users' ids with it (`user_hash`), so a
 * browser can be a verified user (src/chat/identity.ts). The platform makes it; rotating is the only
 * way to see it, in that answer, for the tenant's secret key (`/v1`) and the admin
 * (`/admin/tenants/{id}`).
 */
import { z } from "@hono/zod-openapi";
import { eq, sql } from "drizzle-orm";
import { newRouter } from "../app";
import { randomToken } from "../auth/keys";
import { tenants } from "../db/schema";
import { AppError } from "../errors";
import { jsonResponse } from "../openapi";
import type { Services } from "../services";
import { invalidateTenant } from "../tenants/config";
import type { TenantScope } from "../tenants/scope";
import { type Actor, audit } from "../tenants/service";

export const RotatedIdentitySecret = z
  .object({
    tenant_id: z.string(),
    identity_secret: z.string().openapi({
      description:
        "Keep it on the tenant's server: user_hash = hex HMAC-SHA256 of user_id with this whole string as the key. Shown once; the previous secret stops verifying now.",
    }),
  })
  .openapi("RotatedIdentitySecret");

/** Makes a new identity secret (about 256 random bits) and stores it in place of the old one. */
async function rotateIdentitySecret(svc: Services, tenantId: string, who: Actor) {
  const secret = `ids_${randomToken(43)}`;
  await svc.dbh.db.transaction(async (tx) => {
    const [row] = await tx
      .update(tenants)
      .set({
        identitySecret: secret,
        configVersion: sql`${tenants.configVersion} + 1`,
        updatedAt: new Date(),
      })
      .where(eq(tenants.id, tenantId))
      .returning({ id: tenants.id });
    if (!row) throw new AppError("NOT_FOUND", `no tenant ${tenantId}`);
    // The audit log records the rotation, never the secret.
    await audit(tx, who, tenantId, "tenant.rotate_identity_secret", tenantId, {});
  });
  await invalidateTenant(svc, tenantId);
  return { tenant_id: tenantId, identity_secret: secret };
}

/** POST /identity-secret in a tenant scope. */
export const identitySecretRoutes = (scope: TenantScope) =>
  newRouter().openapi(
    scope.route({
      method: "post",
      path: "/identity-secret",
      tags: ["tenants"],
      summary:
        "Make a new identity secret for verifying logged-in users (user_id + user_hash); it is shown in this answer only",
      responses: { 200: jsonResponse(RotatedIdentitySecret, "The new secret") },
    }),
    async (c) => {
      const out = await rotateIdentitySecret(c.get("svc"), c.get("tenant").id, c.get("actor"));
      return c.json(out, 200, { "Cache-Control": "no-store" });
    },
  );
