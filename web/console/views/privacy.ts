import type { ErasureResult, SubjectExport } from "../../../src/api-types";
import { el } from "../../shared/dom";
import type { Api } from "../api";
import { errorBox, notice } from "../ui";

/** How the person is named: a browser's visitor id or a verified (or server-named) user id. */
export type SubjectKind = "visitor_id" | "user_id";

/** The export request's body. */
export function subjectBody(kind: SubjectKind, id: string): Record<string, string> {
  return { [kind]: id.trim() };
}

/**
 * The erasure request's body, or why it cannot be sent: the id must be typed a second time,
 * exactly, as the confirmation (the server checks it too).
 */
export function erasureBody(
  kind: SubjectKind,
  id: string,
  confirm: string,
): { body: Record<string, string> } | { problem: string } {
  const subject = id.trim();
  if (subject === "") return { problem: "Enter the id of the person to erase." };
  if (confirm.trim() !== subject) return { problem: `Type ${subject} exactly to confirm the erasure.` };
  return { body: { [kind]: subject, confirm: subject } };
}

/** A short account of an export: what it holds, for the status line. */
export function exportSummary(x: SubjectExport): string {
  const messages = x.conversations.reduce((n, c) => n + c.messages.length, 0);
  return (
    `${x.subject}: ${x.conversations.length} conversation(s), ${messages} message(s), ` +
    `${x.turns.length} turn(s), ${x.feedback.length} feedback, ` +
    `${x.experiment_assignments.length} experiment assignment(s)${x.truncated ? " (truncated: more exist)" : ""}.`
  );
}

/** A visitor's export and erasure (docs/privacy.md): download as JSON, erase after typing the id again. */
export function privacyView(api: Api, tenantId: string): HTMLElement {
  const status = el("div", { "aria-live": "polite" });
  const kind = el(
    "select",
    { id: "p-kind" },
    el("option", { value: "visitor_id" }, "visitor id (a browser)"),
    el("option", { value: "user_id" }, "user id (verified or named by your server)"),
  );
  const id = el("input", { id: "p-id", maxlength: "200", required: "", autocomplete: "off" });
  const kindOf = (): SubjectKind => (kind.value === "user_id" ? "user_id" : "visitor_id");

  const exportForm = el(
    "form",
    { class: "inline", "aria-labelledby": "p-export-h" },
    el("button", { type: "submit", class: "primary" }, "Export as JSON"),
  );
  exportForm.addEventListener("submit", (e) => {
    e.preventDefault();
    if (id.value.trim() === "") {
      status.replaceChildren(notice("Enter the id of the person to export.", "info"));
      return;
    }
    api
      .send<SubjectExport>(
        "POST",
        api.tenantPath(tenantId, "privacy/export"),
        subjectBody(kindOf(), id.value),
      )
      .then((x) => {
        const url = URL.createObjectURL(new Blob([JSON.stringify(x, null, 2)], { type: "application/json" }));
        const link = el(
          "a",
          { href: url, download: `export-${tenantId}-${x.subject}.json` },
          "Download the export",
        );
        status.replaceChildren(el("div", { class: "alert ok", role: "status" }, exportSummary(x), " ", link));
      })
      .catch((err: unknown) => status.replaceChildren(errorBox(err)));
  });

  const confirm = el("input", { id: "p-confirm", maxlength: "200", autocomplete: "off" });
  const eraseForm = el(
    "form",
    { class: "inline", "aria-labelledby": "p-erase-h" },
    el("label", { for: "p-confirm" }, "Type the id again to confirm"),
    confirm,
    el("button", { type: "submit", class: "danger" }, "Erase"),
  );
  eraseForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const req = erasureBody(kindOf(), id.value, confirm.value);
    if ("problem" in req) {
      status.replaceChildren(el("div", { class: "alert error", role: "alert" }, req.problem));
      return;
    }
    api
      .send<ErasureResult>("POST", api.tenantPath(tenantId, "privacy/erase"), req.body)
      .then((r) => {
        confirm.value = "";
        const rows = Object.values(r.rows_deleted).reduce((a, b) => a + b, 0);
        status.replaceChildren(
          notice(
            `Erased: ${r.transcripts_deleted} transcript(s), ${rows} row(s), ${r.assignments_deleted} assignment(s).` +
              (r.truncated
                ? " More remain: erase again."
                : ` Audit reference ${r.subject_hash.slice(0, 12)}….`),
          ),
        );
      })
      .catch((err: unknown) => status.replaceChildren(errorBox(err)));
  });

  return el(
    "section",
    {},
    el("h2", {}, "Privacy requests"),
    el(
      "p",
      { class: "muted" },
      "Everything held about one person: export it, or erase it (transcripts, analytics rows, experiment assignments; counts stay).",
    ),
    el(
      "div",
      { class: "inline" },
      el("label", { for: "p-kind" }, "Identify by"),
      kind,
      el("label", { for: "p-id" }, "Id"),
      id,
    ),
    el("h3", { id: "p-export-h" }, "Export"),
    exportForm,
    el("h3", { id: "p-erase-h" }, "Erase"),
    el("p", { class: "muted" }, "An erasure cannot be undone."),
    eraseForm,
    status,
  );
}
