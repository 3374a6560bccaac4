import type { PublicConfig } from "../../../src/api-types";
import { ApiError, apiErrorOf } from "../../shared/api-error";
import { el } from "../../shared/dom";
import { Api } from "../api";
import { type OperatorSessionBody, operatorSession, type Session } from "../session";
import { errorBox, notice } from "../ui";

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

/** POSTs JSON to a console session route; answers its body, or throws the API's error. */
async function post<T>(path: string, body: unknown): Promise<T> {
  const res = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  if (res.status === 202) return undefined as T;
  if (!res.ok) throw await apiErrorOf(res);
  return (await res.json()) as T;
}

/** Opens an operator session from a one-use link's token (a magic link). */
export async function redeemMagicLink(token: string): Promise<Session> {
  return operatorSession(await post<OperatorSessionBody>("/operator/magic-link/redeem", { token }));
}

const failedWith = (err: unknown) =>
  err instanceof ApiError ? errorBox(err) : errorBox(err instanceof Error ? err.message : err);

function field(id: string, label: string, attrs: Record<string, string>): [HTMLElement, HTMLInputElement] {
  const input = el("input", { id, required: "", ...attrs }) as HTMLInputElement;
  return [el("label", { for: id }, label), input];
}

/** An operator's sign-in: workspace (tenant id), email and password, or a link by email. */
function operatorSignIn(onSignedIn: (s: Session) => void): HTMLElement {
  const [tenantLabel, tenant] = field("op-tenant", "Workspace (tenant id)", { autocomplete: "organization" });
  const [emailLabel, email] = field("op-email", "Email", { type: "email", autocomplete: "username" });
  const [passLabel, password] = field("op-password", "Password", {
    type: "password",
    autocomplete: "current-password",
  });
  const status = el("div", { "aria-live": "polite" });
  const submit = el("button", { type: "submit", class: "primary" }, "Log in");
  const link = el("button", { type: "button" }, "Email me a sign-in link");
  const form = el(
    "form",
    { class: "signin", "aria-labelledby": "op-heading" },
    el("h2", { id: "op-heading" }, "Operators"),
    tenantLabel,
    tenant,
    emailLabel,
    email,
    passLabel,
    password,
    submit,
    link,
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    submit.disabled = true;
    post<OperatorSessionBody>("/operator/session", {
      tenant_id: tenant.value.trim(),
      email: email.value.trim(),
      password: password.value,
    })
      .then((b) => onSignedIn(operatorSession(b)))
      .catch((err: unknown) => status.replaceChildren(failedWith(err)))
      .finally(() => {
        submit.disabled = false;
      });
  });
  queueMicrotask(() => tenant.focus());
  link.addEventListener("click", () => {
    if (!tenant.reportValidity() || !email.reportValidity()) return;
    post("/operator/magic-link", { tenant_id: tenant.value.trim(), email: email.value.trim() })
      .then(() =>
        status.replaceChildren(
          notice("If that account exists, a sign-in link is on its way (valid 15 minutes).", "info"),
        ),
      )
      .catch((err: unknown) => status.replaceChildren(failedWith(err)));
  });
  return form;
}

/** An invitation's form: choose a password, then signed in. */
export function acceptInviteView(token: string, onSignedIn: (s: Session) => void): HTMLElement {
  const [passLabel, password] = field("invite-password", "Choose a password (12 characters or more)", {
    type: "password",
    autocomplete: "new-password",
    minlength: "12",
  });
  const status = el("div", { "aria-live": "polite" });
  const submit = el("button", { type: "submit", class: "primary" }, "Set password and sign in");
  const form = el(
    "form",
    { class: "signin" },
    el("h1", {}, "Join the chatedge console"),
    passLabel,
    password,
    submit,
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    post<OperatorSessionBody>("/operator/invitations/accept", { token, password: password.value })
      .then((b) => onSignedIn(operatorSession(b)))
      .catch((err: unknown) => status.replaceChildren(failedWith(err)))
      .finally(() => {
        submit.disabled = false;
      });
  });
  queueMicrotask(() => password.focus());
  return form;
}

/** The sign-in page: operators by email, or the admin token or a tenant's secret key. */
export function signInView(onSignedIn: (s: Session) => void): HTMLElement {
  return el(
    "div",
    { class: "signin-page" },
    el("h1", {}, "chatedge console"),
    operatorSignIn(onSignedIn),
    keySignIn(onSignedIn),
  );
}

/** The key form: the admin token, or a tenant's secret key for that tenant's own pages. */
function keySignIn(onSignedIn: (s: Session) => void): HTMLElement {
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
    { class: "signin", "aria-labelledby": "key-heading" },
    el("h2", { id: "key-heading" }, "Platform admin or API key"),
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
  return form;
}
