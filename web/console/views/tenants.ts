import type { Tenant, TenantList } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { button, errorBox, table } from "../ui";

/** Every tenant, a page at a time, inactive ones on request. */
export function tenantsView(api: Api): HTMLElement {
  const rows = el("div");
  const more = el("div");
  const inactive = el("input", { type: "checkbox", id: "t-inactive" });
  const shown: Tenant[] = [];
  const page = async (cursor: string | null) => {
    const q = new URLSearchParams({ limit: "50", include_inactive: String(inactive.checked) });
    if (cursor) q.set("cursor", cursor);
    try {
      const list = await api.get<TenantList>(`/admin/tenants?${q}`);
      shown.push(...list.tenants);
      rows.replaceChildren(
        table(
          ["Tenant", "Name", "Model", "Origins", "Status"],
          shown.map((t) => [
            el("a", { href: `#/t/${encodeURIComponent(t.tenant_id)}/dashboard` }, t.tenant_id),
            t.name,
            el("code", {}, t.model),
            String(t.allowed_origins.length),
            t.active ? "active" : el("span", { class: "tag inactive" }, "inactive"),
          ]),
          `${shown.length} tenants`,
        ),
      );
      more.replaceChildren(list.next_cursor ? button("Load more", () => void page(list.next_cursor)) : "");
    } catch (err) {
      rows.replaceChildren(errorBox(err));
    }
  };
  const reload = () => {
    shown.length = 0;
    void page(null);
  };
  inactive.addEventListener("change", reload);
  reload();
  return el(
    "section",
    {},
    el(
      "div",
      { class: "toolbar" },
      el("h1", {}, "Tenants"),
      el("label", { class: "check" }, inactive, " show inactive"),
      el("a", { class: "button primary", href: "#/new" }, "New tenant"),
    ),
    rows,
    more,
  );
}
