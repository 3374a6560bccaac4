import type { ApiKey, CreatedKey } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { date } from "../format";
import { button, errorBox, load, table } from "../ui";

/** The tenant's keys: create (the key is shown once), list, revoke. */
export function keysView(api: Api, tenantId: string): HTMLElement {
  const path = `/admin/tenants/${encodeURIComponent(tenantId)}/keys`;
  const list = el("div");
  const created = el("div", { "aria-live": "polite" });
  const refresh = () =>
    load(list, async () => {
      const { keys } = await api.get<{ keys: ApiKey[] }>(path);
      return table(
        ["Name", "Kind", "Key", "Created", "Status", "Action"],
        keys.map((k) => [
          k.name || "—",
          k.kind,
          el("code", {}, `${k.prefix}…${k.last4}`),
          date(k.created_at),
          k.revoked_at ? `revoked ${date(k.revoked_at)}` : "active",
          k.revoked_at
            ? ""
            : button(
                "Revoke",
                () => {
                  if (!window.confirm(`Revoke ${k.prefix}…${k.last4}? It stops working at once.`)) return;
                  api
                    .send<ApiKey>("DELETE", `${path}/${k.id}`)
                    .then(() => refresh())
                    .catch((err: unknown) => created.replaceChildren(errorBox(err)));
                },
                { class: "danger", "aria-label": `Revoke key ${k.prefix}…${k.last4}` },
              ),
        ]),
      );
    });

  const kind = el(
    "select",
    { id: "k-kind" },
    el("option", { value: "publishable" }, "publishable (browsers, the widget)"),
    el("option", { value: "secret" }, "secret (servers, this console)"),
  );
  const name = el("input", { id: "k-name", maxlength: "100", placeholder: "e.g. website widget" });
  const form = el(
    "form",
    { class: "inline" },
    el("label", { for: "k-kind" }, "Kind"),
    kind,
    el("label", { for: "k-name" }, "Name"),
    name,
    el("button", { type: "submit", class: "primary" }, "Create key"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    api
      .send<CreatedKey>("POST", path, { kind: kind.value, name: name.value.trim() })
      .then((k) => {
        name.value = "";
        created.replaceChildren(shownOnce(k));
        void refresh();
      })
      .catch((err: unknown) => created.replaceChildren(errorBox(err)));
  });
  void refresh();
  return el("section", {}, form, created, list);
}

/** The new key, this once, with a copy button and (publishable keys) the widget's script tag. */
function shownOnce(k: CreatedKey): HTMLElement {
  const snippet = `<script src="${location.origin}/widget.js" data-key="${k.key}" async></script>`;
  const copy = (text: string) => () => void navigator.clipboard?.writeText(text);
  return el(
    "div",
    { class: "alert ok once", role: "status" },
    el("strong", {}, "Copy this key now: it is shown once and never again."),
    el(
      "div",
      { class: "secret" },
      el("code", { "data-created-key": "" }, k.key),
      button("Copy", copy(k.key)),
    ),
    k.kind === "publishable"
      ? el(
          "div",
          {},
          el("p", {}, "Put the widget on a page (its origin must be in the allowed origins):"),
          el("div", { class: "secret" }, el("code", {}, snippet), button("Copy", copy(snippet))),
        )
      : null,
  );
}
