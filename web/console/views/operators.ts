/**
 * The tenant's operators (docs/handoff.md): who may sign into the console, with which role.
 * Owners, the tenant's secret key and the admin invite, rename, change roles, remove and sign
 * people out everywhere; agents see the list, and may sign themselves out everywhere.
 */
import type { InvitedOperator, Operator } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { date } from "../format";
import { button, errorBox, load, notice, table } from "../ui";

/** Whether this session may change operators (agents may only read). */
export function mayManageOperators(api: Api): boolean {
  return api.session.kind !== "operator" || api.session.role === "owner";
}

/** The operators list with its actions, and the invitation form. */
export function operatorsView(api: Api, tenantId: string): HTMLElement {
  const path = api.tenantPath(tenantId, "operators");
  const manage = mayManageOperators(api);
  const list = el("div");
  const status = el("div", { "aria-live": "polite" });
  const failed = (err: unknown) => status.replaceChildren(errorBox(err));
  const act = (label: string, confirmText: string, run: () => Promise<unknown>, done: string) =>
    button(
      label.split(" ")[0] as string,
      () => {
        if (!window.confirm(confirmText)) return;
        run()
          .then(() => {
            status.replaceChildren(notice(done));
            void refresh();
          })
          .catch(failed);
      },
      { "aria-label": label },
    );

  const actions = (o: Operator) => {
    if (o.status === "removed") return "";
    const at = `${path}/${o.id}`;
    const signOut = act(
      `Sign out ${o.email} everywhere`,
      `End every console session of ${o.email}?`,
      () => api.send("DELETE", `${at}/sessions`),
      `${o.email} is signed out everywhere.`,
    );
    // An agent may sign itself out everywhere, and change nothing else.
    if (!manage) {
      const self = api.session.kind === "operator" && api.session.operatorId === o.id;
      return self ? el("div", { class: "row-actions" }, signOut) : "";
    }
    const other = o.role === "owner" ? "agent" : "owner";
    return el(
      "div",
      { class: "row-actions" },
      act(
        `Make ${o.email} ${other === "owner" ? "an owner" : "an agent"}`,
        `Make ${o.email} ${other === "owner" ? "an owner" : "an agent"}?`,
        () => api.send("PATCH", at, { role: other }),
        `${o.email} is now ${other === "owner" ? "an owner" : "an agent"}.`,
      ),
      signOut,
      act(
        `Remove ${o.email}`,
        `Remove ${o.email}? They cannot sign in any more; the audit log keeps their name.`,
        () => api.send("DELETE", at),
        `${o.email} is removed.`,
      ),
    );
  };

  const refresh = () =>
    load(list, async () => {
      const { data } = await api.get<{ data: Operator[] }>(path);
      if (data.length === 0) return el("p", {}, "No operators yet. Invite the first owner below.");
      return table(
        ["Name", "Email", "Role", "Status", "Since", "Actions"],
        data.map((o) => [o.name, o.email, o.role, o.status, date(o.created_at), actions(o)]),
        "Operators",
      );
    });

  const email = el("input", { id: "invite-email", type: "email", required: "", autocomplete: "off" });
  const name = el("input", { id: "invite-name", required: "", maxlength: "100", autocomplete: "off" });
  const role = el(
    "select",
    { id: "invite-role" },
    el("option", { value: "agent" }, "agent: reads and answers conversations"),
    el("option", { value: "owner" }, "owner: also manages settings and operators"),
  ) as HTMLSelectElement;
  const invite = el(
    "form",
    { class: "stack", "aria-labelledby": "invite-heading" },
    el("h2", { id: "invite-heading" }, "Invite an operator"),
    el("label", { for: "invite-email" }, "Email"),
    email,
    el("label", { for: "invite-name" }, "Name"),
    name,
    el("label", { for: "invite-role" }, "Role"),
    role,
    el("button", { type: "submit", class: "primary" }, "Invite"),
  );
  invite.addEventListener("submit", (e) => {
    e.preventDefault();
    api
      .send<InvitedOperator>("POST", path, {
        email: (email as HTMLInputElement).value.trim(),
        name: (name as HTMLInputElement).value.trim(),
        role: role.value,
      })
      .then((r) => {
        (invite as HTMLFormElement).reset();
        status.replaceChildren(
          notice(
            `Invited ${r.operator.email}. Send them this link (one use, 7 days); it is not shown again:`,
          ),
          el("div", { class: "secret" }, el("code", {}, r.invite_url)),
        );
        void refresh();
      })
      .catch(failed);
  });

  void refresh();
  return el("div", {}, el("h2", {}, "Operators"), list, status, manage ? invite : null);
}
