/**
 * Console views in Chromium against `npm run dev` (one stack for both):
 * - Tools: the demo tenant's order_status tool (registered by local/dev.ts) is listed; a tool is
 *   registered through the form, its secret shown once; rotated; deleted; the view passes axe.
 * - Operators: an invitation link opens the console, the operator sets a password and is signed in
 *   by an HttpOnly cookie the page cannot read; invites a colleague; signs out and back in with
 *   email and password; every page passes axe.
 * - Knowledge: the demo tenant's seeded sources with their status; a document added, indexed while
 *   the view polls, updated and deleted; a URL that is not there fails with its reason; the
 *   server's refusal in its words; the embedding key never shown; a question nothing answered
 *   listed once, grouped; the view passes axe.
 */
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../e2e/stack";
import { axeViolations, formatViolations } from "./axe";
import { type Browser, CHROMIUM, launchChromium } from "./chromium";

let stack: Stack;
let browser: Browser;

const hasChromium = existsSync(CHROMIUM);

describe.skipIf(!hasChromium && !process.env.CI)("console views", () => {
  beforeAll(async () => {
    [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  }, 60_000);

  it("lists, registers (secret shown once), rotates and deletes tools, accessibly", async () => {
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => void d.accept());
    await page.goto(`${stack.base}/console`);
    await page.getByLabel("Admin token or tenant secret key").fill(stack.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await page.goto(`${stack.base}/console/#/t/demo/tools`);
    await page.getByRole("heading", { name: "Tools", level: 2 }).waitFor();
    const table = page.getByRole("table", { name: "Registered tools" });
    await table.getByText("order_status").waitFor();
    expect(await table.getByRole("row").count()).toBe(2);
    expect(formatViolations(await axeViolations(page)), "tools view").toBe("");

    // Register through the form: labelled fields, the secret appears once.
    const form = page.getByRole("form", { name: "Register a tool" });
    await form.getByLabel("Name", { exact: true }).fill("faq_lookup");
    await form.getByLabel("Description (the model reads it)").fill("Finds FAQ answers");
    await form.getByLabel("URL or script name").fill("http://127.0.0.1:9/faq");
    await form.getByRole("button", { name: "Register tool" }).click();
    const secret = page.locator("[data-tool-secret]");
    await secret.waitFor();
    const shown = (await secret.textContent()) ?? "";
    expect(shown).toMatch(/^tsec_[A-Za-z0-9]{40}$/);
    await table.getByText("faq_lookup").waitFor();
    expect(formatViolations(await axeViolations(page)), "after registering").toBe("");
    const read = await fetch(`${stack.base}/admin/tenants/demo/tools/faq_lookup`, {
      headers: { authorization: `Bearer ${stack.adminToken}` },
    });
    expect(await read.text()).not.toContain(shown);

    // A bad schema is refused in the form, in the server's words.
    const parameters = form.getByLabel("Arguments: JSON Schema (an object schema)");
    await form.getByLabel("Name", { exact: true }).fill("bad_schema");
    await form.getByLabel("Description (the model reads it)").fill("x");
    await form.getByLabel("URL or script name").fill("http://127.0.0.1:9/x");
    await parameters.fill('{"type": "string"}');
    await form.getByRole("button", { name: "Register tool" }).click();
    await form
      .getByRole("alert")
      .getByText(/object schema/)
      .first()
      .waitFor();

    await page.getByRole("button", { name: "Rotate secret of tool faq_lookup" }).click();
    await expect.poll(async () => (await secret.textContent()) ?? "").not.toBe(shown);
    expect(await secret.textContent()).toMatch(/^tsec_/);

    await page.getByRole("button", { name: "Delete tool faq_lookup" }).click();
    await expect.poll(() => table.getByText("faq_lookup").count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);

  it("an invited operator joins, works as themselves, signs out and in again, accessibly", async () => {
    const email = `owner-${Date.now()}@demo.example`;
    const invited = await fetch(`${stack.base}/admin/tenants/demo/operators`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ email, name: "Olivia Owner", role: "owner" }),
    });
    expect(invited.status).toBe(201);
    const { invite_url } = (await invited.json()) as { invite_url: string };
    expect(invite_url.startsWith(`${stack.base}/console/#invite=`)).toBe(true);

    const context = browser.context;
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => void d.accept());
    await page.goto(invite_url);
    await page.getByRole("heading", { name: "Join the chatedge console", level: 1 }).waitFor();
    expect(formatViolations(await axeViolations(page)), "invitation page").toBe("");
    // The token left the address bar before anything else ran.
    expect(page.url()).not.toContain("invite=");
    await page.getByLabel("Choose a password (12 characters or more)").fill("a long pass phrase");
    await page.getByRole("button", { name: "Set password and sign in" }).click();
    await page.getByText(`Signed in as Olivia Owner <${email}> (owner, demo)`).waitFor();
    // The session is an HttpOnly cookie: the page's script cannot read it.
    expect(await page.evaluate(() => document.cookie)).not.toContain("chatedge_session");
    expect((await context.cookies()).find((c) => c.name === "__Host-chatedge_session")).toMatchObject({
      httpOnly: true,
      secure: true,
      sameSite: "Strict",
    });

    await page.getByRole("link", { name: "Operators" }).click();
    const table = page.getByRole("table", { name: "Operators" });
    await table.getByText(email).waitFor();
    expect(formatViolations(await axeViolations(page)), "operators view").toBe("");
    const form = page.getByRole("form", { name: "Invite an operator" });
    await form.getByLabel("Email").fill(`agent-${Date.now()}@demo.example`);
    await form.getByLabel("Name").fill("Arthur Agent");
    await form.getByRole("button", { name: "Invite" }).click();
    await page.getByText(/Invited agent-/).waitFor();
    await table.getByText("Arthur Agent").waitFor();
    const audit = await fetch(`${stack.base}/admin/tenants/demo/audit?limit=5`, {
      headers: { authorization: `Bearer ${stack.adminToken}` },
    });
    expect(await audit.text()).toContain(`${email}`);

    const session = (await context.cookies()).find((c) => c.name === "__Host-chatedge_session")?.value;
    const asSession = () =>
      fetch(`${stack.base}/operator/operators`, {
        headers: { cookie: `__Host-chatedge_session=${session}` },
      });
    expect((await asSession()).status).toBe(200);
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("heading", { name: "Operators", level: 2 }).waitFor();
    // The console shows the sign-in page once the server has ended the session: the cookie is gone
    // from the browser, and the old cookie, sent by anyone who kept it, opens nothing.
    expect((await context.cookies()).some((c) => c.name === "__Host-chatedge_session")).toBe(false);
    expect((await asSession()).status).toBe(401);
    expect(formatViolations(await axeViolations(page)), "sign-in page").toBe("");
    await page.getByLabel("Workspace (tenant id)").fill("demo");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill("a long pass phrase");
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    await page.getByText(`Signed in as Olivia Owner <${email}> (owner, demo)`).waitFor();
    expect(errors).toEqual([]);

    // When the DELETE does not get through, the console says so instead of implying the session ended.
    const second = (await context.cookies()).find((c) => c.name === "__Host-chatedge_session")?.value;
    await page.route("**/operator/session", (r) =>
      r.request().method() === "DELETE" ? r.abort() : r.fallback(),
    );
    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByText(/the server did not end the session/).waitFor();
    await page.getByRole("heading", { name: "Operators", level: 2 }).waitFor();
    const still = await fetch(`${stack.base}/operator/operators`, {
      headers: { cookie: `__Host-chatedge_session=${second}` },
    });
    expect(still.status).toBe(200);
    expect(formatViolations(await axeViolations(page)), "sign-in page, session not ended").toBe("");
    await page.close();
  }, 120_000);

  it("knowledge: sources with their status, added, indexed, updated, deleted; settings; unanswered, accessibly", async () => {
    const asKey = (path: string, body: unknown) =>
      fetch(`${stack.base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${stack.secretKey}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    // A question nothing answers, asked twice in two wordings that normalize alike: one group.
    const conv = (await (await asKey("/v1/conversations", {})).json()) as { id: string };
    for (const content of ["Do you sell zeppelin xylophones?", "do you sell Zeppelin xylophones ?"])
      expect((await asKey(`/v1/conversations/${conv.id}/messages`, { content })).ok).toBe(true);

    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("dialog", (d) => void d.accept());
    let listings = 0;
    page.on("request", (r) => {
      if (r.method() === "GET" && r.url().endsWith("/admin/tenants/demo/knowledge/sources")) listings += 1;
    });
    await page.goto(`${stack.base}/console`);
    await page.getByLabel("Admin token or tenant secret key").fill(stack.adminToken);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Sign out" }).waitFor();
    await page.goto(`${stack.base}/console/#/t/demo/knowledge`);
    await page.getByRole("heading", { name: "Sources", level: 2 }).waitFor();
    const table = page.getByRole("table", { name: "Knowledge sources" });
    const row = (title: string) => table.getByRole("row").filter({ hasText: title });
    for (const title of ["Shipping policy", "Returns FAQ"])
      await row(title).locator('[data-source-status="ready"]').waitFor({ timeout: 60_000 });
    const unanswered = page.getByRole("table", { name: "Unanswered questions, newest first" });
    await unanswered.getByText(/zeppelin xylophones/i).waitFor();
    expect(await unanswered.getByRole("row").count()).toBe(2);
    expect(await unanswered.getByRole("cell").nth(1).textContent()).toBe("2");
    // The demo tenant embeds with the local embedder: keyless, and a key is never shown anyway.
    const settings = page.getByRole("form", { name: "Knowledge settings" });
    expect(await settings.getByLabel("Semantic search (embedding model)").inputValue()).toBe("openai");
    await settings.getByText("API key: not set").waitFor();
    await settings.getByText(/^(All \d+|\d+ of \d+) indexed chunks have vectors of this model/).waitFor();
    expect(await settings.getByLabel("API key", { exact: true }).inputValue()).toBe("");
    await settings.getByRole("button", { name: "Save settings" }).click();
    await settings.getByText("Nothing changed.").waitFor();
    expect(formatViolations(await axeViolations(page)), "knowledge view").toBe("");

    // A document: checked in the form first, then queued, and ready without a reload (the view polls).
    const form = page.getByRole("form", { name: "Add a source" });
    await form.getByRole("button", { name: "Add source" }).click();
    await form.getByText("Please fix the marked fields.").waitFor();
    expect(await form.getByLabel("Title", { exact: true }).getAttribute("aria-invalid")).toBe("true");
    await form.getByLabel("Title", { exact: true }).fill("Gift cards");
    await form.getByLabel("Content").fill("# Gift cards\n\nWe sell gift cards from 10 to 200 euros.");
    await form.getByRole("button", { name: "Add source" }).click();
    await page.getByText("Added Gift cards: queued for indexing.").waitFor();
    await row("Gift cards").locator('[data-source-status="ready"]').waitFor({ timeout: 60_000 });
    expect(formatViolations(await axeViolations(page)), "after adding").toBe("");
    // Fetched again while it was indexing (the first load, after adding, then polls), not once done.
    const atReady = listings;
    expect(atReady).toBeGreaterThanOrEqual(3);
    await page.waitForTimeout(4_000);
    expect(listings).toBe(atReady);

    // Update: the content is typed again (the API does not show it back), re-indexed as version 2.
    await page.getByRole("button", { name: "Update Gift cards" }).click();
    const update = page.getByRole("form", { name: "Update Gift cards" });
    await update
      .getByLabel("Content")
      .fill("# Gift cards\n\nGift cards from 10 to 500 euros, valid two years.");
    await update.getByRole("button", { name: "Save and re-index" }).click();
    await page.getByText("Updated Gift cards: queued for indexing.").waitFor();
    // Leaving the tab while it indexes stops the polling at once; coming back shows it ready.
    await page.getByRole("link", { name: "Tools" }).click();
    await page.getByRole("heading", { name: "Tools", level: 2 }).waitFor();
    const left = listings;
    await page.waitForTimeout(4_000);
    expect(listings).toBe(left);
    await page.getByRole("link", { name: "Knowledge" }).click();
    await row("Gift cards").locator('[data-source-status="ready"]').waitFor({ timeout: 60_000 });
    const listed = (await (
      await fetch(`${stack.base}/admin/tenants/demo/knowledge/sources`, {
        headers: { authorization: `Bearer ${stack.adminToken}` },
      })
    ).json()) as { sources: { title: string; version: number }[] };
    expect(listed.sources.find((s) => s.title === "Gift cards")?.version).toBe(2);

    // A page that is not there fails at once (a 404 is not retried), the reason beside the status.
    const missing = `${stack.base}/no-such-page.html`;
    await form.getByLabel("Kind").selectOption("url");
    await form.getByLabel("Page URL").fill(missing);
    await form.getByRole("button", { name: "Add source" }).click();
    const dead = row(missing).first();
    await dead.locator('[data-source-status="failed"]').waitFor({ timeout: 60_000 });
    await dead.getByText("fetching the page answered 404").waitFor();

    // What only the server checks comes back in its words, with the field it names.
    await form.getByLabel("Kind").selectOption("qa");
    await form.getByLabel("Title", { exact: true }).fill("Long answer");
    await form.getByLabel("Question and answer pairs").fill(`Q: Why?\nA: ${"because ".repeat(600)}`);
    await form.getByRole("button", { name: "Add source" }).click();
    await form.getByRole("alert").getByRole("listitem").filter({ hasText: "pairs.0.answer" }).waitFor();
    expect(await form.getByLabel("Question and answer pairs").getAttribute("aria-invalid")).toBe("true");

    for (const name of ["Delete Gift cards", `Delete ${missing}`]) {
      await page.getByRole("button", { name }).click();
      await page.getByText(`Deleted ${name.slice("Delete ".length)}.`).waitFor();
    }
    await expect.poll(() => row("Gift cards").count()).toBe(0);
    expect(await row("Shipping policy").count()).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  }, 240_000);

  it("an agent reads the knowledge sources, settings and questions with no control to change them, and signs itself out everywhere", async () => {
    const email = `agent-${Date.now()}@demo.example`;
    const invited = await fetch(`${stack.base}/admin/tenants/demo/operators`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ email, name: "Kim Agent", role: "agent" }),
    });
    const { invite_url } = (await invited.json()) as { invite_url: string };
    const page = await browser.context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await page.goto(invite_url);
    await page.getByLabel("Choose a password (12 characters or more)").fill("a long pass phrase");
    await page.getByRole("button", { name: "Set password and sign in" }).click();
    await page.getByText(`Signed in as Kim Agent <${email}> (agent, demo)`).waitFor();
    await page.getByRole("link", { name: "Knowledge" }).click();
    const table = page.getByRole("table", { name: "Knowledge sources" });
    await table.getByText("Shipping policy").waitFor();
    await page
      .getByRole("form", { name: "Knowledge settings" })
      .getByText("only owners can change it")
      .waitFor();
    expect(await page.getByRole("columnheader", { name: "Actions" }).count()).toBe(0);
    expect(await page.getByRole("form", { name: "Add a source" }).count()).toBe(0);
    expect(await page.getByRole("button", { name: "Save settings" }).count()).toBe(0);
    expect(await page.getByLabel("Minimum keyword score (0-1)").isDisabled()).toBe(true);
    // The key is write-only: the agent sees whether one is set, and no field for it.
    await page.getByText("API key: not set").waitFor();
    expect(await page.getByLabel("API key", { exact: true }).isVisible()).toBe(false);
    expect(formatViolations(await axeViolations(page)), "knowledge view, agent").toBe("");
    // The operators list: the agent may sign itself out everywhere, and act on no one else.
    await page.getByRole("link", { name: "Operators" }).click();
    await page.getByRole("table", { name: "Operators" }).getByText(email).waitFor();
    expect(await page.getByRole("button", { name: /^Sign out .* everywhere$/ }).count()).toBe(1);
    page.once("dialog", (d) => void d.accept());
    await page.getByRole("button", { name: `Sign out ${email} everywhere` }).click();
    await page.getByRole("button", { name: "Log in", exact: true }).waitFor();
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
