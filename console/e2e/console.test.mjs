// The console end to end, as an admin uses it, in Debian's Chromium (playwright-core; no
// browser download): sign in, users, keys, Bedrock keys, usage, audit, sign out; plus the
// security properties (cookie flags, no secret in storage, HTML or logs, CSRF, headers) and
// axe. Screenshots of every page, desktop and narrow, go to e2e/artifacts/.
import AxeBuilder from "@axe-core/playwright";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { chromium } from "playwright-core";
import { ADMIN, consoleDir, startStack } from "./stack.mjs";

const artifacts = path.join(consoleDir, "e2e", "artifacts");
const BEDROCK_KEY = "ABSK-E2ECANARY-bedrock-secret-WXYZ";

let stack;
let browser;
let context;
let page;
const secrets = { keys: [], token: null };

before(async () => {
  mkdirSync(artifacts, { recursive: true });
  stack = await startStack();
  browser = await chromium.launch({
    executablePath: process.env.CCP_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
});

after(async () => {
  await browser?.close();
  await stack?.stop();
});

/** A screenshot at desktop width and at 390 px, and an axe run with no serious finding. */
async function look(name) {
  // After a server action the page re-renders, and Next.js sets the new document's title a
  // moment later: wait for it, so axe sees the page as it settles (a page without a title
  // still fails here, by timeout).
  await page.waitForFunction(() => document.title.trim() !== "");
  await page.screenshot({ path: path.join(artifacts, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(artifacts, `${name}-narrow.png`), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 1, `${name}: the page scrolls sideways at 390 px by ${overflow} px`);
  await page.setViewportSize({ width: 1280, height: 900 });
  const axe = await new AxeBuilder({ page }).analyze();
  const serious = axe.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(
    serious.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`),
    [],
    `${name}: axe findings`,
  );
}

async function gatewayStatus(key) {
  const res = await fetch(`${stack.gatewayUrl}/ak/${key}/v1/messages`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": "sk-ant-e2e-client" },
    body: JSON.stringify({ model: "claude-sonnet-5-5", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function eventually(what, check) {
  const deadline = Date.now() + 60_000;
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `gave up waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function revealedKey() {
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  const key = (await page.getByTestId("revealed-key").textContent()).trim();
  assert.match(key, /^ccp_/);
  const lines = await page.getByTestId("paste-lines").textContent();
  assert.equal(lines, `export ANTHROPIC_BASE_URL=${stack.gatewayUrl}/ak/${key}\nexport CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1\n`);
  secrets.keys.push(key);
  return key;
}

test("the admin's whole round, through the real API and gateway", async () => {
  // Not signed in: to /login.
  await page.goto(`${stack.consoleUrl}/users`);
  assert.match(page.url(), /\/login/);
  await look("login");

  await page.getByLabel("Username").fill(ADMIN.username);
  await page.getByLabel("Password").fill("not the password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Wrong username or password.").waitFor();

  // The username stays filled in after a refusal.
  assert.equal(await page.getByLabel("Username").inputValue(), ADMIN.username);
  await page.getByLabel("Password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/users$/);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "ccp_session");
  assert.ok(session, "session cookie set");
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, "Strict");
  secrets.token = session.value;
  await page.getByText("No users yet").waitFor();
  await look("users-empty");

  // A user, with a validation error first.
  await page.getByLabel("Name", { exact: true }).fill("Ada Lovelace");
  await page.getByLabel("Email", { exact: true }).fill("not-an-email");
  await page.getByRole("button", { name: "Create user" }).click();
  await page.getByText("Enter an email address.").waitFor();
  assert.equal(await page.getByLabel("Name", { exact: true }).inputValue(), "Ada Lovelace", "kept after a refusal");
  await page.getByLabel("Email", { exact: true }).fill("ada@example.com");
  await page.getByRole("button", { name: "Create user" }).click();
  await page.waitForURL(/\/users\/[0-9a-f-]{36}$/);
  const userUrl = page.url();
  await page.getByRole("heading", { name: "Ada Lovelace" }).waitFor();

  // The API's 409 shows next to the field.
  await page.goto(`${stack.consoleUrl}/users`);
  await page.getByLabel("Name", { exact: true }).fill("Ada Again");
  await page.getByLabel("Email", { exact: true }).fill("ada@example.com");
  await page.getByRole("button", { name: "Create user" }).click();
  await page.locator("#f-email-error").waitFor();
  await look("users");

  // Issue a key and read it from the dialog.
  await page.goto(userUrl);
  await page.getByLabel("Key name (optional)").fill("laptop");
  await page.getByRole("button", { name: "Issue key" }).click();
  const first = await revealedKey();
  await look("key-issued");
  await page.getByRole("button", { name: "Done" }).click();

  // Requests through the gateway with it reach the Plan upstream and are metered.
  for (let i = 0; i < 3; i++) assert.equal(await gatewayStatus(first), 200);
  assert.equal(stack.upstream.seen.filter((r) => r.method === "POST").length, 3);

  // The usage page shows them (the metering writer flushes on its own schedule). The page
  // asks for the totals and the top lists at once, so a render can fall between the two
  // answers and the commit: wait for one that shows the rows in both.
  await eventually("the usage page counts 3 requests, in the totals and for Ada", async () => {
    await page.goto(`${stack.consoleUrl}/usage?granularity=hour`);
    const text = await page.locator("dl").first().textContent();
    // Before any row, the page shows no table but a line saying there is nothing yet.
    const topUsers = page.getByRole("table", { name: "Top users" });
    if (!text.includes("Requests3") || (await topUsers.count()) === 0) return false;
    return /Ada Lovelace3/.test(await topUsers.textContent());
  });
  await page.getByTestId("usage-chart").locator("svg").first().waitFor();
  const topKeys = await page.getByRole("table", { name: "Top keys" }).textContent();
  assert.match(topKeys, /laptop \(ccp_/);
  assert.ok(!topKeys.includes(first), "never the key itself");
  assert.match(await page.getByRole("table", { name: "Top models" }).textContent(), /claude-sonnet-5-5/);
  const rows = page.getByRole("table", { name: "Usage by bucket" }).locator("tbody tr");
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().textContent(), /3\b/);
  await look("usage");

  // The user's own usage, one line per key.
  await page.goto(userUrl);
  await page.getByTestId("key-usage-chart").locator(".recharts-line").first().waitFor();
  assert.match(await page.getByTestId("key-usage-chart").textContent(), /laptop \(ccp_/);

  // A Bedrock key: last 4 shown, never the key.
  await page.getByRole("button", { name: "Add Bedrock key" }).click();
  await page.getByLabel("Bedrock API key").fill(BEDROCK_KEY);
  await page.getByLabel("Region").fill("us-west-2");
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("us-west-2, key …WXYZ").waitFor();
  assert.ok(!(await page.content()).includes(BEDROCK_KEY));

  // The usage policy: a bad budget is refused next to the field, a good one is saved and
  // shown against this month's spend.
  await page.getByText("Estimated Bedrock spend this calendar month (UTC").waitFor();
  await page.getByLabel("Monthly Bedrock budget, USD").fill("twelve");
  await page.getByRole("button", { name: "Save policy" }).click();
  await page.locator("#f-monthly_budget_usd-error").waitFor();
  await page.getByLabel("Routing").selectOption("plan_only");
  await page.getByLabel("Monthly Bedrock budget, USD").fill("25");
  await page.getByLabel("Warn at, %").fill("90");
  await page.getByRole("button", { name: "Save policy" }).click();
  await page.getByText("Saved. Gateways apply it").waitFor();
  await page.reload();
  await page.getByText("of $25.00 (0 %)").waitFor();
  assert.equal(await page.getByLabel("Routing").inputValue(), "plan_only");
  assert.equal(await page.getByLabel("Warn at, %").inputValue(), "90");
  assert.equal(await page.getByRole("meter").getAttribute("aria-valuenow"), "0");
  await look("user");

  // Rotate without grace: the old key is refused, the new one works.
  await page.getByRole("button", { name: "Rotate" }).click();
  await page.getByLabel("Grace period").selectOption("0");
  await page.getByRole("button", { name: "Rotate key" }).click();
  const second = await revealedKey();
  await page.getByRole("button", { name: "Done" }).click();
  assert.equal(await gatewayStatus(second), 200);
  await eventually("the rotated-out key is refused", async () => (await gatewayStatus(first)) === 404);

  // Revoke the new one (confirm dialog): the gateway refuses it.
  const active = page.getByTestId("access-key").filter({ hasText: "active" }).first();
  await active.getByRole("button", { name: "Revoke" }).click();
  await page.getByRole("button", { name: "Revoke key" }).click();
  await page.getByRole("dialog").waitFor({ state: "detached" });
  await eventually("the revoked key is refused", async () => (await gatewayStatus(second)) === 404);

  // Deactivate the user.
  await page.getByRole("button", { name: "Deactivate user" }).click();
  await page.getByRole("button", { name: "Activate user" }).waitFor();

  // The model map.
  await page.goto(`${stack.consoleUrl}/model-mappings`);
  await page.getByText("No mappings of your own yet").waitFor();
  await page.locator("#new-anthropic").fill("claude-opus-5-5");
  await page.locator("#new-bedrock").fill("global.anthropic.claude-opus-5-5-v1");
  await page.getByRole("button", { name: "Add mapping" }).click();
  await page.getByRole("heading", { name: "Mappings" }).waitFor();
  // The fake Plan reports claude-sonnet-5-5, which nothing maps: a banner says so, with a
  // one-click fix that sets the sonnet family default.
  const banner = page.getByRole("alert").filter({ hasText: "cannot fail over" });
  await banner.waitFor();
  assert.match(await banner.textContent(), /claude-sonnet-5-5/);
  await look("model-mappings-unmapped");
  await banner.getByRole("button", { name: /Use it as the sonnet default/ }).click();
  await banner.waitFor({ state: "detached" });
  await page.locator('input[value="family:sonnet"]').waitFor();
  await look("model-mappings");

  // The audit log holds what was done.
  await page.goto(`${stack.consoleUrl}/audit`);
  const audit = await page.getByRole("table", { name: "Audit entries" }).textContent();
  for (const action of ["user.create", "access_key.issue", "bedrock_key.set", "access_key.rotate", "access_key.revoke", "user.update", "model_mapping.set"]) {
    assert.ok(audit.includes(action), `audit shows ${action}`);
  }
  await look("audit");

  // First-load JavaScript of each page, as the browser fetched it (a fresh tab each).
  const js = {};
  for (const [name, url] of [
    ["/login", `${stack.consoleUrl}/login`],
    ["/users", `${stack.consoleUrl}/users`],
    ["/users/[id]", userUrl],
    ["/usage", `${stack.consoleUrl}/usage`],
    ["/model-mappings", `${stack.consoleUrl}/model-mappings`],
    ["/audit", `${stack.consoleUrl}/audit`],
  ]) {
    const tab = await context.newPage();
    await tab.goto(url, { waitUntil: "networkidle" });
    js[name] = await tab.evaluate(() => {
      const scripts = performance.getEntriesByType("resource").filter((r) => r.initiatorType === "script");
      return {
        files: scripts.length,
        wire_kb: Math.round(scripts.reduce((n, r) => n + r.encodedBodySize, 0) / 1024),
        kb: Math.round(scripts.reduce((n, r) => n + r.decodedBodySize, 0) / 1024),
      };
    });
    await tab.close();
  }
  writeFileSync(path.join(artifacts, "first-load-js.json"), `${JSON.stringify(js, null, 2)}\n`);
  console.log(`first-load JS per page: ${JSON.stringify(js)}`);

  // No secret in browser storage or in the HTML after a reload.
  await page.reload();
  const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
  const html = await page.content();
  for (const secret of [secrets.token, ...secrets.keys, BEDROCK_KEY]) {
    assert.ok(!stored.includes(secret), "a secret in web storage");
    assert.ok(!html.includes(secret), "a secret in the page");
  }

  // Sign out: the old cookie no longer works.
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login\?reason=signed-out/);
  const replay = await browser.newContext();
  await replay.addCookies([{ ...session }]);
  const again = await replay.newPage();
  await again.goto(`${stack.consoleUrl}/users`);
  await again.waitForURL(/\/login\?reason=expired/);
  await again.getByText("Your session has ended. Sign in again.").waitFor();
  await replay.close();
});

test("security: headers, CSRF, and no secret in the console's log", async () => {
  const res = await fetch(`${stack.consoleUrl}/login`);
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /frame-ancestors 'none'/);
  assert.match(csp, /default-src 'self'/);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("referrer-policy"), "no-referrer");
  assert.equal(res.headers.get("x-frame-options"), "DENY");

  // A cross-site POST to a server action (the login form's) is refused; the same POST from
  // the console's own origin signs in, so it is the origin check that refused it.
  const probe = await browser.newContext();
  const probePage = await probe.newPage();
  let signIn;
  probePage.on("request", (r) => {
    if (r.method() === "POST" && r.headers()["next-action"]) signIn ??= { headers: r.headers(), body: r.postDataBuffer() };
  });
  await probePage.goto(`${stack.consoleUrl}/login`);
  await probePage.getByLabel("Username").fill(ADMIN.username);
  await probePage.getByLabel("Password").fill(ADMIN.password);
  await probePage.getByRole("button", { name: "Sign in" }).click();
  await probePage.waitForURL(/\/users$/);
  await probe.close();
  assert.ok(signIn, "the login form posts to a server action");
  // The browser's own sign-in request, replayed with another Origin.
  const post = (origin) => {
    const headers = { ...signIn.headers, origin };
    for (const h of ["host", "content-length", "cookie", "referer"]) delete headers[h];
    return fetch(`${stack.consoleUrl}/login`, { method: "POST", body: signIn.body, redirect: "manual", headers });
  };
  const forged = await post("https://evil.example");
  assert.ok(forged.status >= 400, `cross-site action answered ${forged.status}`);
  assert.equal(forged.headers.get("set-cookie"), null, "no session for a cross-site POST");
  const own = await post(stack.consoleUrl);
  assert.match(own.headers.get("set-cookie") ?? "", /ccp_session=/, "the same POST from the console's origin signs in");

  const log = stack.readLog("console");
  for (const secret of [secrets.token, ...secrets.keys, BEDROCK_KEY, ADMIN.password]) {
    if (secret) assert.ok(!log.includes(secret), "a secret in the console's log");
  }
});

test("with the admin API down, pages say so in a banner", async () => {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(`${stack.consoleUrl}/login`);
  await p.getByLabel("Username").fill(ADMIN.username);
  await p.getByLabel("Password").fill(ADMIN.password);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.waitForURL(/\/users$/);
  await stack.stopAdmin();
  for (const path of ["/users", "/usage", "/audit", "/model-mappings"]) {
    await p.goto(`${stack.consoleUrl}${path}`);
    await p.getByRole("alert").filter({ hasText: "The admin API cannot be reached" }).first().waitFor();
  }
  await p.screenshot({ path: path.join(artifacts, "api-down-desktop.png"), fullPage: true });
  await ctx.close();
});
