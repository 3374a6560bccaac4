/**
 * The tenant's tools (docs/tools.md): list, register, edit, rotate the secret, delete. A secret is
 * shown once, right after it is made; the bot uses a tool only when it is enabled and allowed.
 */
import type { RotatedToolSecret, Tool, ToolList, ToolWithSecret } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { date } from "../format";
import { button, errorBox, load, notice, table } from "../ui";

const EXAMPLE_SCHEMA = JSON.stringify(
  {
    type: "object",
    properties: { order_id: { type: "string", description: "The order number" } },
    required: ["order_id"],
  },
  null,
  2,
);

const targetText = (t: Tool["target"]) => (t.kind === "https" ? t.url : `dispatch: ${t.script}`);

/** The tenant's tools with their actions, and the form to register one. */
export function toolsView(api: Api, tenantId: string): HTMLElement {
  const path = api.tenantPath(tenantId, "tools");
  const list = el("div");
  const status = el("div", { "aria-live": "polite" });
  const editor = el("div");
  const failed = (err: unknown) => status.replaceChildren(errorBox(err));

  const refresh = () =>
    load(list, async () => {
      const { tools } = await api.get<ToolList>(path);
      if (tools.length === 0) return el("p", {}, "No tools yet. Register one below.");
      return table(
        ["Name", "Target", "Timeout", "Enabled", "Allowed", "Updated", "Actions"],
        tools.map((t) => [
          el("strong", {}, t.name),
          el("code", {}, targetText(t.target)),
          `${t.timeout_ms} ms`,
          t.enabled ? "yes" : "no",
          t.allowed ? "yes" : "no (not in allowed_tools)",
          date(t.updated_at),
          el(
            "div",
            { class: "row-actions" },
            button("Edit", () => editor.replaceChildren(toolForm(api, path, t, saved)), {
              "aria-label": `Edit tool ${t.name}`,
            }),
            button(
              "Rotate secret",
              () => {
                if (!window.confirm(`Rotate the secret of ${t.name}? The old one stops working at once.`))
                  return;
                api
                  .send<RotatedToolSecret>("POST", `${path}/${encodeURIComponent(t.name)}/secret`)
                  .then((r) => status.replaceChildren(shownOnce(r.name, r.secret)))
                  .catch(failed);
              },
              { "aria-label": `Rotate secret of tool ${t.name}` },
            ),
            button(
              "Delete",
              () => {
                if (!window.confirm(`Delete the tool ${t.name}? The bot stops using it at once.`)) return;
                api
                  .send<Tool>("DELETE", `${path}/${encodeURIComponent(t.name)}`)
                  .then(() => {
                    status.replaceChildren(notice(`Deleted ${t.name}.`));
                    void refresh();
                  })
                  .catch(failed);
              },
              { class: "danger", "aria-label": `Delete tool ${t.name}` },
            ),
          ),
        ]),
        "Registered tools",
      );
    });

  const saved = (t: Tool | ToolWithSecret) => {
    editor.replaceChildren(toolForm(api, path, null, saved));
    status.replaceChildren("secret" in t ? shownOnce(t.name, t.secret) : notice(`Saved ${t.name}.`));
    void refresh();
  };
  editor.replaceChildren(toolForm(api, path, null, saved));
  void refresh();
  return el(
    "section",
    {},
    el("h2", {}, "Tools"),
    el(
      "p",
      {},
      "Workers the bot may call (docs/tools.md). The bot uses a tool only when it is enabled and its name is in the tenant's allowed tools.",
    ),
    status,
    list,
    editor,
  );
}

/** Register a tool (`tool` null) or edit one (its name is fixed). */
function toolForm(
  api: Api,
  path: string,
  tool: Tool | null,
  onSaved: (t: Tool | ToolWithSecret) => void,
): HTMLElement {
  const id = (f: string) => `tool-${tool ? "edit" : "new"}-${f}`;
  const field = (name: string, label: string, control: HTMLElement, help?: string) =>
    el(
      "div",
      { class: "field" },
      el("label", { for: id(name) }, label),
      control,
      help ? el("span", { class: "field-msg", id: `${id(name)}-help` }, help) : null,
    );
  const name = el("input", {
    id: id("name"),
    required: "",
    pattern: "[a-zA-Z0-9_\\-]{1,64}",
    maxlength: "64",
    "aria-describedby": `${id("name")}-help`,
  });
  const description = el("input", { id: id("description"), required: "", maxlength: "1024" });
  const parameters = el("textarea", { id: id("parameters"), required: "", rows: "8", spellcheck: "false" });
  const kind = el(
    "select",
    { id: id("kind") },
    el("option", { value: "https" }, "https URL (signed request)"),
    el("option", { value: "dispatch" }, "Workers for Platforms script"),
  );
  const target = el("input", {
    id: id("target"),
    required: "",
    maxlength: "2048",
    "aria-describedby": `${id("target")}-help`,
  });
  const timeout = el("input", {
    id: id("timeout"),
    type: "number",
    min: "100",
    max: "30000",
    step: "1",
    required: "",
  });
  const enabled = el("input", { id: id("enabled"), type: "checkbox" });
  if (tool) {
    description.value = tool.description;
    parameters.value = JSON.stringify(tool.parameters, null, 2);
    kind.value = tool.target.kind;
    target.value = tool.target.kind === "https" ? tool.target.url : tool.target.script;
    timeout.value = String(tool.timeout_ms);
    enabled.checked = tool.enabled;
  } else {
    parameters.value = EXAMPLE_SCHEMA;
    timeout.value = "5000";
    enabled.checked = true;
  }
  const status = el("div", { "aria-live": "polite" });
  const form = el(
    "form",
    { class: "config", "aria-labelledby": id("heading") },
    el("h3", { id: id("heading") }, tool ? `Edit ${tool.name}` : "Register a tool"),
    tool ? null : field("name", "Name", name, "1-64 of a-z, A-Z, 0-9, _ and -; what the model calls it"),
    field("description", "Description (the model reads it)", description),
    field("parameters", "Arguments: JSON Schema (an object schema)", parameters),
    field("kind", "Where it runs", kind),
    field(
      "target",
      "URL or script name",
      target,
      "https://... ; or <tenant id>__<name> for a dispatch script",
    ),
    field("timeout", "Timeout (ms, 100-30000)", timeout),
    el("div", { class: "field" }, el("label", { for: id("enabled") }, enabled, " Enabled")),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "submit", class: "primary" }, tool ? "Save changes" : "Register tool"),
      tool ? button("Cancel", () => onSaved(tool)) : null,
    ),
    status,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    let schema: unknown;
    try {
      schema = JSON.parse(parameters.value);
    } catch {
      status.replaceChildren(
        el("div", { class: "alert error", role: "alert" }, "The arguments schema is not valid JSON."),
      );
      parameters.focus();
      return;
    }
    const body: Record<string, unknown> = {
      description: description.value.trim(),
      parameters: schema,
      target:
        kind.value === "https"
          ? { kind: "https", url: target.value.trim() }
          : { kind: "dispatch", script: target.value.trim() },
      timeout_ms: Number(timeout.value),
      enabled: enabled.checked,
    };
    const request = tool
      ? api.send<Tool>("PATCH", `${path}/${encodeURIComponent(tool.name)}`, body)
      : api.send<ToolWithSecret>("POST", path, { name: name.value.trim(), ...body });
    request.then(onSaved).catch((err: unknown) => status.replaceChildren(errorBox(err)));
  });
  return form;
}

/** A tool's new secret, this once, with a copy button. */
function shownOnce(name: string, secret: string): HTMLElement {
  return el(
    "div",
    { class: "alert ok once", role: "status" },
    el("strong", {}, `Copy the secret of ${name} now: it is shown once and never again.`),
    el(
      "div",
      { class: "secret" },
      el("code", { "data-tool-secret": "" }, secret),
      button("Copy", () => void navigator.clipboard?.writeText(secret), {
        "aria-label": `Copy the secret of ${name}`,
      }),
    ),
    el("p", {}, "Give it to the tool: npx wrangler secret put TOOL_SECRET"),
  );
}
