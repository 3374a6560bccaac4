import type { Tenant } from "../../../src/api-types";
import { ApiError } from "../../shared/api-error";
import { el } from "../../shared/dom";
import { type Api, issuesOf } from "../api";
import { errorBox, notice } from "../ui";
import { FIELDS, type Field } from "./fields";

type Control = HTMLInputElement | HTMLTextAreaElement;

function control(f: Field, value: string | boolean): Control {
  const id = `f-${f.name}`;
  const common = { id, name: f.name, "aria-describedby": `${id}-msg` };
  if (f.input === "textarea") {
    const t = el("textarea", { ...common, rows: f.name === "system_prompt" ? "6" : "3" });
    t.value = String(value);
    return t;
  }
  const i = el("input", { ...common, type: f.input, step: f.input === "number" ? "any" : "" });
  if (f.input === "checkbox") i.checked = value === true;
  else i.value = String(value);
  return i;
}

/**
 * What the redaction patterns' field says when stored patterns break the current rules: they were
 * saved before the work bound and are still applied, but a save of the field must meet it.
 */
export function storedPatternsNote(problems: Tenant["redact_pattern_problems"]): string | undefined {
  if (problems.length === 0) return undefined;
  const each = problems.map((p) => (p.pattern === null ? p.problem : `${p.pattern}: ${p.problem}`));
  return `Saved before the current rules and still applied; rewrite them to save this field: ${each.join("; ")}`;
}

/** The configuration form: checked in the browser, and the server's refusals shown as it words them. */
export function configView(api: Api, tenant: Tenant, onSaved: (t: Tenant) => void): HTMLElement {
  const status = el("div", { "aria-live": "polite" });
  const controls = new Map<string, { field: Field; input: Control; msg: HTMLElement }>();
  const form = el("form", { class: "config", novalidate: "" });
  for (const f of FIELDS) {
    const input = control(f, f.show((tenant as unknown as Record<string, unknown>)[f.name]));
    const msg = el("span", { class: "field-msg", id: `f-${f.name}-msg` }, f.help ?? "");
    controls.set(f.name, { field: f, input, msg });
    form.append(
      el("div", { class: `field ${f.input}` }, el("label", { for: `f-${f.name}` }, f.label), input, msg),
    );
  }
  const save = el("button", { type: "submit", class: "primary" }, "Save changes");
  form.append(el("div", { class: "actions" }, save), status);

  const mark = (name: string, message: string | undefined) => {
    const c = controls.get(name);
    if (!c) return;
    c.input.setAttribute("aria-invalid", message ? "true" : "false");
    c.msg.textContent = message ?? c.field.help ?? "";
    c.msg.classList.toggle("invalid", Boolean(message));
  };
  const stored = storedPatternsNote(tenant.redact_pattern_problems);
  if (stored) mark("redact_patterns", stored);

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const patch: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const [name, c] of controls) {
      const raw =
        c.input instanceof HTMLInputElement && c.input.type === "checkbox" ? c.input.checked : c.input.value;
      const p = c.field.parse(raw);
      mark(name, p.ok ? undefined : p.message);
      if (!p.ok) problems.push(`${c.field.label}: ${p.message}`);
      else if (
        JSON.stringify(p.value) !== JSON.stringify((tenant as unknown as Record<string, unknown>)[name])
      )
        patch[name] = p.value;
    }
    if (problems.length > 0) {
      status.replaceChildren(
        el(
          "div",
          { class: "alert error", role: "alert" },
          "Please fix: ",
          el("ul", {}, ...problems.map((p) => el("li", {}, p))),
        ),
      );
      return;
    }
    if (Object.keys(patch).length === 0) {
      status.replaceChildren(notice("Nothing changed.", "info"));
      return;
    }
    save.disabled = true;
    api
      .send<Tenant>("PATCH", `/admin/tenants/${encodeURIComponent(tenant.tenant_id)}`, patch)
      .then((t) => onSaved(t))
      .catch((err: unknown) => {
        if (err instanceof ApiError)
          for (const i of issuesOf(err)) mark(i.path.split(".")[0] ?? "", i.message);
        status.replaceChildren(errorBox(err));
      })
      .finally(() => {
        save.disabled = false;
      });
  });
  return el(
    "section",
    {},
    el(
      "p",
      { class: "muted" },
      `Config version ${tenant.config_version}, updated ${new Date(tenant.updated_at).toLocaleString()}. Changes take effect at once.`,
    ),
    form,
  );
}

/** A new tenant: the three required fields; the rest can be edited afterwards. */
export function createTenantView(api: Api, onCreated: (t: Tenant) => void): HTMLElement {
  const id = el("input", {
    id: "n-id",
    required: "",
    pattern: "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?",
    maxlength: "63",
  });
  const name = el("input", { id: "n-name", required: "", maxlength: "200" });
  const model = el("input", { id: "n-model", placeholder: "gpt-4o-mini (default), mock, claude-haiku, ..." });
  const prompt = el("textarea", { id: "n-prompt", required: "", rows: "4", maxlength: "32000" });
  const status = el("div", { "aria-live": "polite" });
  const form = el(
    "form",
    { class: "config" },
    el(
      "div",
      { class: "field" },
      el("label", { for: "n-id" }, "Tenant id"),
      id,
      el("span", { class: "field-msg" }, "1-63 of a-z, 0-9 and -; fixed once created"),
    ),
    el("div", { class: "field" }, el("label", { for: "n-name" }, "Name"), name),
    el("div", { class: "field" }, el("label", { for: "n-model" }, "Model"), model),
    el("div", { class: "field textarea" }, el("label", { for: "n-prompt" }, "System prompt"), prompt),
    el("div", { class: "actions" }, el("button", { type: "submit", class: "primary" }, "Create tenant")),
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    const body: Record<string, string> = {
      tenant_id: id.value.trim(),
      name: name.value.trim(),
      system_prompt: prompt.value,
    };
    if (model.value.trim()) body.model = model.value.trim();
    api
      .send<Tenant>("POST", "/admin/tenants", body)
      .then(onCreated)
      .catch((err: unknown) => status.replaceChildren(errorBox(err)));
  });
  return el("section", {}, el("h1", {}, "New tenant"), form);
}
