/**
 * Human handoff in Chromium against `npm run dev` (docs/handoff.md), both sides at once:
 * - a visitor on the demo page asks for a human in the widget; an operator signs in, finds the
 *   conversation in the inbox (status filter and search), takes it over and answers; the visitor
 *   sees the answer live; the operator hands back; the bot answers the next message; the widget's
 *   transcript and the console's agree entry by entry. The console's view is the README's
 *   docs/images/handoff.png (written when missing or with UPDATE_DOCS_SCREENSHOTS=1).
 * - the inbox list: 25 a page, "Load more" for the rest, search over messages; it passes axe.
 */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Stack, startStack } from "../e2e/stack";
import { axeViolations, formatViolations } from "./axe";
import { type Browser, CHROMIUM, launchChromium } from "./chromium";

const SHOTS = "test-results/browser";
const PASSWORD = "a long pass phrase";
let stack: Stack;
let browser: Browser;

async function api<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
  const res = await fetch(`${stack.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

/** A new tab that fails the test on any script error in it. */
async function tab(): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("dialog", (d) => void d.accept());
  return { page, errors };
}

/** Invites an operator of the demo tenant and signs them in through the invitation page. */
async function signedInOperator(name: string): Promise<{ id: string; page: Page; errors: string[] }> {
  const email = `${name.split(" ")[0]?.toLowerCase()}-${Date.now()}@demo.example`;
  const { operator, invite_url } = await api<{ operator: { id: string }; invite_url: string }>(
    "POST",
    "/admin/tenants/demo/operators",
    stack.adminToken,
    { email, name, role: "agent" },
  );
  const t = await tab();
  await t.page.goto(invite_url);
  await t.page.getByLabel("Choose a password (12 characters or more)").fill(PASSWORD);
  await t.page.getByRole("button", { name: "Set password and sign in" }).click();
  await t.page.getByText(`Signed in as ${name}`).waitFor();
  return { id: operator.id, ...t };
}

/** The widget's messages as [role, text], in order. */
function widgetTranscript(page: Page): Promise<string[][]> {
  return page
    .locator(".log .msg")
    .evaluateAll((els) =>
      els.map((e) => [
        [...e.classList].find((c) => c !== "msg") ?? "",
        (e.querySelector(".body")?.textContent ?? "").replace(/\s+/g, " ").trim(),
      ]),
    );
}

/** The console's transcript as [role, text], in seq order. */
function consoleTranscript(page: Page): Promise<string[][]> {
  return page
    .locator("ol.transcript > li")
    .evaluateAll((els) =>
      els.map((e) => [
        (e as HTMLElement).dataset.role ?? "",
        (e.querySelector(".content, .notice")?.textContent ?? "").replace(/\s+/g, " ").trim(),
      ]),
    );
}

async function expectAccessible(page: Page, view: string) {
  await expect.poll(() => page.locator("[aria-busy]").count(), { message: view }).toBe(0);
  expect(formatViolations(await axeViolations(page)), view).toBe("");
}

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium && !process.env.CI) console.warn(`browser tests skipped: no Chromium at ${CHROMIUM}`);

describe.skipIf(!hasChromium && !process.env.CI)("human handoff in Chromium", () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await stack?.stop();
  }, 60_000);

  it("a visitor asks for a human, an operator answers live and hands back, the bot answers, both transcripts agree", async () => {
    const demo = /demo chat page:\s+(\S+)/.exec(stack.output())?.[1] ?? "";
    const { custom_greeting: greeting } = await api<{ custom_greeting: string }>(
      "GET",
      "/admin/tenants/demo",
      stack.adminToken,
    );

    // The visitor, on the demo page: one question, then a person asked for.
    const visitor = await tab();
    const v = visitor.page;
    // What the visitor's live socket received and what the operator's writes answered: printed if
    // the live answer does not arrive. It once did not: the answer was never posted, its text lost
    // when a live frame redrew the console's panel and took the focus (kept since, 06239ad).
    const seen: string[] = [];
    v.on("websocket", (ws) => {
      seen.push("visitor socket opened");
      ws.on("framereceived", (f) => seen.push(`visitor socket: ${String(f.payload).slice(0, 160)}`));
      ws.on("close", () => seen.push("visitor socket closed"));
    });
    await v.goto(demo);
    await v.getByRole("button", { name: "Open chat" }).click();
    const say = async (text: string) => {
      const box = v.getByRole("textbox", { name: "Message" });
      await box.fill(text);
      await box.press("Enter");
    };
    await say("Hello, my parcel is late");
    await expect.poll(() => v.locator(".log .msg.assistant").count()).toBeGreaterThanOrEqual(2);
    await say("I want to talk to a human please");
    await v
      .locator(".log .msg.assistant", { hasText: "passed our conversation to a member of the team" })
      .waitFor();

    // The operator finds it in the inbox: waiting for a human, and by the visitor's words.
    const operator = await signedInOperator("Anna Operator");
    const o = operator.page;
    o.on("response", (r) => {
      if (r.request().method() !== "GET")
        seen.push(`operator ${r.request().method()} ${r.url()}: ${r.status()}`);
    });
    await o.getByRole("link", { name: "Inbox" }).click();
    await o.getByRole("heading", { name: "Inbox", level: 2 }).waitFor();
    await o.getByLabel("Status").selectOption("waiting");
    await o.getByLabel("Search").fill("parcel");
    const rows = o.locator("a[data-conversation]");
    // The index follows the conversation through the analytics queue: apply until it is there.
    await expect
      .poll(
        async () => {
          await o.getByRole("button", { name: "Apply" }).click();
          await expect.poll(() => o.getByText("Loading…").count()).toBe(0);
          return rows.count();
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe(1);
    await expectAccessible(o, "inbox list");
    const id = (await rows.first().getAttribute("data-conversation")) ?? "";
    await rows.first().click();
    await o.getByRole("heading", { name: `Conversation ${id}`, level: 2 }).waitFor();
    // Each answered message shows its figures under it.
    await o.locator(".turn-meta").first().waitFor();
    expect(await o.locator(".turn-meta").first().textContent()).toMatch(
      /model \S+ · \d+ in \/ \d+ out tokens/,
    );
    await expectAccessible(o, "conversation view");

    // Take over and answer: the visitor sees who joined and the answer, live.
    await o.getByRole("button", { name: "Take over" }).click();
    await o.locator("[data-live=on]").waitFor();
    const answer = "Hi, I am Anna. Your parcel left our warehouse this morning.";
    await o.getByLabel("Message to the visitor").fill(answer);
    await o.getByRole("button", { name: "Send" }).click();
    await v.locator(".log .msg.system", { hasText: "Anna Operator joined" }).waitFor();
    await v
      .locator(".log .msg.operator", { hasText: answer })
      .waitFor()
      .catch(async (err: unknown) => {
        console.error(
          JSON.stringify({ seen, consoleStatus: await o.locator("main").textContent() }, null, 1),
        );
        throw err;
      });
    await o.locator("ol.transcript li[data-role=operator]", { hasText: answer }).waitFor();
    await o.screenshot({ path: `${SHOTS}/handoff-console.png`, fullPage: true });
    // Opt-in once committed, so a local run does not rewrite the README's image (it shows times).
    if (process.env.UPDATE_DOCS_SCREENSHOTS === "1" || !existsSync("docs/images/handoff.png")) {
      mkdirSync("docs/images", { recursive: true });
      copyFileSync(`${SHOTS}/handoff-console.png`, "docs/images/handoff.png");
    }
    await v.screenshot({ path: `${SHOTS}/handoff-widget.png` });

    // Hand back: the bot answers the visitor's next message, and the operator sees both live.
    await o.getByRole("button", { name: "Hand back" }).click();
    await v.locator(".log .msg.system", { hasText: "The assistant is back" }).waitFor();
    await say("Thanks, and how long does shipping take?");
    await o.locator("ol.transcript li[data-role=user]", { hasText: "how long does shipping take" }).waitFor();
    const last = o.locator("ol.transcript > li").last();
    await expect.poll(() => last.getAttribute("data-role"), { timeout: 20_000 }).toBe("assistant");
    await expect
      .poll(() => v.locator(".log .msg").last().getAttribute("class"), { timeout: 20_000 })
      .toBe("msg assistant");

    // Both sides hold the same transcript (the widget also shows the tenant's greeting first).
    const widget = await widgetTranscript(v);
    expect(widget[0]).toEqual(["assistant", greeting.replace(/\s+/g, " ").trim()]);
    await expect
      .poll(async () => JSON.stringify(await consoleTranscript(o)), { timeout: 10_000 })
      .toBe(JSON.stringify(widget.slice(1)));
    const roles = widget.slice(1).map((w) => w[0]);
    expect(roles).toEqual([
      "user",
      "assistant",
      "user",
      "assistant",
      "system",
      "operator",
      "system",
      "user",
      "assistant",
    ]);

    // Anna is signed out everywhere while the conversation is open: its live socket closes at once,
    // the page says why, and it does not try to reconnect.
    await o.locator("[data-live=on]").waitFor();
    await api("DELETE", `/admin/tenants/demo/operators/${operator.id}/sessions`, stack.adminToken);
    await o.getByText("Your console session has ended").waitFor({ timeout: 5_000 });
    await o.waitForTimeout(1_500);
    expect(await o.locator("[data-live]").getAttribute("data-live")).toBe("off");
    expect(await o.getByText("reconnecting").count()).toBe(0);

    expect(visitor.errors).toEqual([]);
    expect(operator.errors).toEqual([]);
    await v.close();
    await o.close();
  }, 180_000);

  it("the inbox pages 25 at a time with Load more, and searches the messages", async () => {
    // 27 conversations of the demo tenant through its server key, one message each.
    const ids: string[] = [];
    for (let i = 0; i < 27; i++) {
      const c = await api<{ id: string }>("POST", "/v1/conversations", stack.secretKey, {});
      await api("POST", `/v1/conversations/${c.id}/messages`, stack.secretKey, {
        content: `question number ${i} about zebra${i}`,
      });
      ids.push(c.id);
    }
    // The index follows through the analytics queue: wait until it holds all 27, then page them.
    await expect
      .poll(
        async () =>
          (await api<{ data: unknown[] }>("GET", "/v1/inbox?q=question&limit=100", stack.secretKey)).data
            .length,
        { timeout: 60_000, interval: 500 },
      )
      .toBe(27);
    const operator = await signedInOperator("Lars Lister");
    const o = operator.page;
    await o.getByRole("link", { name: "Inbox" }).click();
    const rows = o.locator("a[data-conversation]");
    const search = async (q: string) => {
      await o.getByLabel("Search").fill(q);
      await o.getByRole("button", { name: "Apply" }).click();
      await expect.poll(() => o.getByText("Loading…").count()).toBe(0);
      return rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-conversation")));
    };
    expect(await search("zebra0")).toEqual([ids[0]]);
    expect(await search("question")).toHaveLength(25);
    await o.getByRole("button", { name: "Load more" }).click();
    await expect.poll(() => rows.count()).toBeGreaterThanOrEqual(27);
    const shown = await rows.evaluateAll((els) => els.map((e) => e.getAttribute("data-conversation")));
    expect(new Set(shown).size).toBe(shown.length);
    expect(shown.slice(0, 27).reverse()).toEqual(ids);
    await expectAccessible(o, "inbox after load more");
    expect(operator.errors).toEqual([]);
    await o.close();
  }, 180_000);
});
