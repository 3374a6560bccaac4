/**
 * Console views in Chromium against `npm run dev` (one stack for both):
 * - Tools: the demo tenant's order_status tool (registered by local/dev.ts) is listed; a tool is
 *   registered through the form, its secret shown once; rotated; deleted; the view passes axe.
 * - Operators: an invitation link opens the console, the operator sets a password and is signed in
 *   by an HttpOnly cookie the page cannot read; invites a colleague; signs out and back in with
 *   email and password; every page passes axe.
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

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.getByRole("heading", { name: "Operators", level: 2 }).waitFor();
    expect(formatViolations(await axeViolations(page)), "sign-in page").toBe("");
    // The server ended the session too: the old cookie opens nothing.
    expect((await context.cookies()).some((c) => c.name === "__Host-chatedge_session")).toBe(false);
    await page.getByLabel("Workspace (tenant id)").fill("demo");
    await page.getByLabel("Email").fill(email);
    await page.getByLabel("Password", { exact: true }).fill("a long pass phrase");
    await page.getByRole("button", { name: "Log in", exact: true }).click();
    await page.getByText(`Signed in as Olivia Owner <${email}> (owner, demo)`).waitFor();
    expect(errors).toEqual([]);
    await page.close();
  }, 120_000);
});
