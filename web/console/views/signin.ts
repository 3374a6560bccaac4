import type { PublicConfig } from "../../../src/api-types";
import { ApiError } from "../../shared/api-error";
import { el } from "../../shared/dom";
import { Api } from "../api";
import type { Session } from "../session";
import { errorBox } from "../ui";

/** Checks a token against the API and answers the session it opens. */
async function signIn(token: string): Promise<Session> {
  if (token.startsWith("pk_"))
    throw new Error(
      "Publishable keys belong in the widget. Sign in with a secret key (sk_...) or the admin token.",
    );
  const none = () => {};
  if (token.startsWith("sk_")) {
    const cfg = await new Api({ kind: "tenant", token, tenantId: "", name: "" }, none).get<PublicConfig>(
      "/v1/config",
    );
    return { kind: "tenant", token, tenantId: cfg.tenant_id, name: cfg.name };
  }
  await new Api({ kind: "admin", token }, none).get("/admin/tenants?limit=1");
  return { kind: "admin", token };
}

/** The sign-in form: the admin token, or a tenant's secret key for that tenant's own pages. */
export function signInView(onSignedIn: (s: Session) => void): HTMLElement {
  const token = el("input", {
    id: "token",
    type: "password",
    required: "",
    autocomplete: "off",
    spellcheck: "false",
  });
  const status = el("div", { "aria-live": "polite" });
  const submit = el("button", { type: "submit", class: "primary" }, "Sign in");
  const form = el(
    "form",
    { class: "signin" },
    el("h1", {}, "chatedge console"),
    el("label", { for: "token" }, "Admin token or tenant secret key"),
    token,
    el("p", { class: "muted" }, "Kept in this tab only (sessionStorage); closing the tab signs you out."),
    submit,
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const t = token.value.trim();
    if (!t) return void form.reportValidity();
    submit.disabled = true;
    signIn(t)
      .then(onSignedIn)
      .catch((err: unknown) =>
        status.replaceChildren(
          err instanceof ApiError ? errorBox(err) : errorBox(err instanceof Error ? err.message : err),
        ),
      )
      .finally(() => {
        submit.disabled = false;
      });
  });
  queueMicrotask(() => token.focus());
  return form;
}
