import { describe, expect, it } from "vitest";
import type { PublicConfig } from "../../src/api-types";
import { admin, createKey, createTenant, envelope, send } from "./helpers";

const ORIGIN = "https://shop.example";

async function widgetOf(pk: string): Promise<PublicConfig["widget"]> {
  const res = await send("GET", "/v1/config", pk, undefined, { origin: ORIGIN });
  expect(res.status).toBe(200);
  return ((await res.json()) as PublicConfig).widget;
}

describe("the widget's appearance settings", () => {
  it("default to the tenant's name, no accent or avatar, bottom-right and the browser's language", async () => {
    const t = await createTenant({ name: "Acme Outdoor", allowed_origins: [ORIGIN] });
    expect([
      t.widget_title,
      t.widget_accent_color,
      t.widget_avatar_url,
      t.widget_position,
      t.widget_locale,
    ]).toEqual([null, null, null, "bottom-right", null]);
    const pk = (await createKey(t.tenant_id, "publishable")).key;
    expect(await widgetOf(pk)).toEqual({
      title: "Acme Outdoor",
      accent_color: null,
      avatar_url: null,
      position: "bottom-right",
      locale: null,
    });
  });

  it("are set by the admin and published on /v1/config at once", async () => {
    const t = await createTenant({ allowed_origins: [ORIGIN] });
    const pk = (await createKey(t.tenant_id, "publishable")).key;
    await widgetOf(pk); // cached now: the update must replace it
    const settings = {
      widget_title: "Ask Acme",
      widget_accent_color: "#0F766E",
      widget_avatar_url: "https://cdn.acme.example/bot.png",
      widget_position: "bottom-left",
      widget_locale: "de",
    };
    const res = await admin("PATCH", `/tenants/${t.tenant_id}`, settings);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject(settings);
    expect(await widgetOf(pk)).toEqual({
      title: "Ask Acme",
      accent_color: "#0F766E",
      avatar_url: "https://cdn.acme.example/bot.png",
      position: "bottom-left",
      locale: "de",
    });
    // Back to the defaults with null.
    const reset = await admin("PATCH", `/tenants/${t.tenant_id}`, {
      widget_title: null,
      widget_accent_color: null,
      widget_avatar_url: null,
      widget_locale: null,
    });
    expect(reset.status).toBe(200);
    expect(await widgetOf(pk)).toMatchObject({
      title: t.name,
      accent_color: null,
      avatar_url: null,
      locale: null,
    });
  });

  it("refuses colours, avatars, positions and languages the widget cannot safely use, changing nothing", async () => {
    const t = await createTenant({ allowed_origins: [ORIGIN], widget_accent_color: "#112233" });
    const bad: [string, unknown][] = [
      ["widget_accent_color", "red"],
      ["widget_accent_color", "#12345"],
      ["widget_accent_color", "#123456;background:url(https://evil.example)"],
      ["widget_avatar_url", "http://cdn.acme.example/bot.png"],
      ["widget_avatar_url", "javascript:alert(1)"],
      ["widget_avatar_url", "data:image/svg+xml,<svg onload=alert(1)>"],
      ["widget_avatar_url", "https://user:pass@cdn.acme.example/bot.png"],
      ["widget_avatar_url", "https://cdn.acme.example/a b.png"],
      ["widget_position", "top-left"],
      ["widget_locale", "xx"],
      ["widget_title", ""],
      ["widget_title", "x".repeat(81)],
    ];
    for (const [field, value] of bad) {
      const res = await admin("PATCH", `/tenants/${t.tenant_id}`, { [field]: value });
      expect(res.status, `${field}=${String(value)}`).toBe(400);
      const err = await envelope(res);
      expect(err.code).toBe("VALIDATION_FAILED");
      expect(JSON.stringify(err.details)).toContain(field);
    }
    const after = (await (await admin("GET", `/tenants/${t.tenant_id}`)).json()) as Record<string, unknown>;
    expect([after.widget_accent_color, after.widget_avatar_url, after.config_version]).toEqual([
      "#112233",
      null,
      t.config_version,
    ]);
  });
});
