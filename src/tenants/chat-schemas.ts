/**
 * The tenant shapes a chat path's app (src/api-chat.ts) needs: the widget's public config and the
 * tenant id. Apart from schemas.ts, whose admin shapes (tenant create and patch, keys, audit) a
 * cold isolate would otherwise build on its first chat request; test/local/bundle.test.ts holds the
 * chat app to that.
 */
import { z } from "@hono/zod-openapi";

/** A tenant id: 1-63 of [a-z0-9-], not starting or ending with -. */
export const TENANT_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const TenantIdParam = z.object({
  id: z
    .string()
    .regex(TENANT_ID, "not a tenant id")
    .openapi({ param: { name: "id", in: "path" } }),
});

export const PublicConfig = z
  .object({
    tenant_id: z.string(),
    name: z.string(),
    greeting: z.string(),
    model: z.string(),
    widget: z
      .object({
        title: z.string(),
        accent_color: z.string().nullable(),
        avatar_url: z.string().nullable(),
        position: z.enum(["bottom-right", "bottom-left"]),
        locale: z.enum(["en", "de", "fr", "es", "ja"]).nullable(),
      })
      .openapi({
        description: "How the widget looks: the tenant's widget_* settings, the title defaulting to the name",
      }),
    turnstile: z.object({ site_key: z.string(), script_url: z.string() }).nullable().openapi({
      description:
        "The bot check a browser passes before its first conversation (send the token as turnstile_token); null when off",
    }),
  })
  .openapi("PublicConfig");
