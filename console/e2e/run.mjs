// The console in a real Chromium against a running local stack, as a new user would use it:
//   node e2e/run.mjs http://127.0.0.1:3000 [screenshot-dir]
// Registers its own users and organization (fresh names each run). Exits non-zero, naming the
// step, on the first failure; prints "console e2e: ok" at the end. Needs /usr/bin/chromium
// (or CHROMIUM=path) and `npm ci` in console/.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { mkdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";

const base = (process.argv[2] ?? "http://127.0.0.1:3000").replace(/\/$/, "");
const shots = process.argv[3] ?? process.env.SCREENSHOT_DIR ?? "target/console";
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const PASSWORD = "Correct-Horse-Battery-9";
const run = Date.now().toString(36);
const TIMEOUT = 10_000;
mkdirSync(shots, { recursive: true });

let step = "start";
const problems = [];
let pages = 0;
let axeChecks = 0;

function fail(message) {
  throw new Error(`${step}: ${message}`);
}

async function api(method, path, token, body) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  const json = text ? JSON.parse(text) : null;
  if (!response.ok) fail(`${method} ${path}: ${response.status} ${text}`);
  return json;
}

async function apiUser(name) {
  await api("POST", "/auth/register", undefined, { username: name, email: `${name}@example.com`, password: PASSWORD });
  return (await api("POST", "/auth/login", undefined, { username: name, password: PASSWORD })).access_token;
}

// Expected 4xx answers (a field error the test provokes) are logged by Chromium as console
// errors; only those of an `allowing` block are forgiven.
let allowed = null;
async function allowing(pattern, body) {
  allowed = pattern;
  try {
    return await body();
  } finally {
    allowed = null;
  }
}

function watch(context, who) {
  context.on("request", (request) => {
    const url = new URL(request.url());
    if ((url.protocol === "http:" || url.protocol === "https:" || url.protocol === "ws:") && url.hostname !== "127.0.0.1") {
      problems.push(`${who}: a request left the machine: ${request.url()}`);
    }
  });
  context.on("page", (page) => {
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      if (allowed && allowed.test(message.text())) return;
      problems.push(`${who}: console error during "${step}": ${message.text()}`);
    });
    page.on("pageerror", (error) => problems.push(`${who}: page error during "${step}": ${error.message}`));
  });
}

/** axe-core inside the page (evaluated through the DevTools protocol, which the page's CSP
 * does not govern, so the check needs no exception in the policy), then a screenshot. */
async function check(page, name) {
  step = `check ${name}`;
  await page.waitForLoadState("load");
  await page.locator("#page-title").waitFor({ timeout: TIMEOUT });
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  axeChecks++;
  if (violations.length) problems.push(`axe on ${name}: ${violations.join("; ")}`);
  // Nothing wider than the screen (tables scroll inside their own box).
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  if (overflow > 1) problems.push(`${name}: the page is ${overflow}px wider than the window`);
  await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  pages++;
}

async function text(page, value, timeout = TIMEOUT) {
  await page.getByText(value).first().waitFor({ timeout });
}

async function main() {
  step = "the root redirects to the console under a strict CSP";
  const root = await fetch(`${base}/`, { redirect: "manual" });
  if (root.status < 300 || root.status > 399 || root.headers.get("location") !== "/console/") fail(`GET / answered ${root.status} ${root.headers.get("location")}`);

  const browser = await chromium.launch({ executablePath, args: ["--no-sandbox"] });
  const admin = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await admin.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  watch(admin, "admin");
  const page = await admin.newPage();
  const first = await page.goto(`${base}/`);
  if (!new URL(page.url()).pathname.startsWith("/console/")) fail(`/ led to ${page.url()}`);
  const csp = first.headers()["content-security-policy"] ?? "";
  const scriptSrc = csp.split(";").find((d) => d.trim().startsWith("script-src")) ?? csp.split(";").find((d) => d.trim().startsWith("default-src"));
  if (!scriptSrc || scriptSrc.includes("unsafe-inline") || scriptSrc.includes("unsafe-eval") || !csp.includes("default-src 'self'")) fail(`CSP: ${csp}`);
  await check(page, "sign-in");

  step = "register through the form";
  await page.getByRole("link", { name: "Register" }).click();
  await page.getByRole("heading", { name: "Create an account" }).waitFor();
  await check(page, "register");
  const adminName = `ada${run}`;
  await page.getByLabel("Username").fill(adminName);
  await page.getByLabel("Email").fill(`${adminName}@example.com`);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Organizations" }).waitFor();

  step = "create an organization";
  await page.getByLabel("Organization name").fill(`acme-${run}`);
  await page.getByRole("button", { name: "Create organization" }).click();
  await text(page, "you are its admin");
  await check(page, "organizations");
  await page.locator(".notice").getByRole("link", { name: `acme-${run}` }).click();
  await page.getByRole("heading", { name: "Clusters" }).waitFor();
  const org = new URL(page.url()).pathname.split("/")[3];

  step = "create a cluster; its bars are meters with their values";
  await page.getByText("Create a cluster").click();
  await page.getByLabel("Name").fill("gpu-a");
  await page.getByLabel("CPU cores").fill("8");
  await page.getByLabel("RAM (GiB)").fill("32");
  await page.getByLabel("GPUs").fill("2");
  await page.getByRole("button", { name: "Create cluster" }).click();
  await page.getByRole("heading", { name: "gpu-a" }).waitFor();
  const gpuMeter = page.getByRole("meter", { name: /GPU/ });
  await gpuMeter.waitFor();
  if ((await page.locator("meter").count()) !== 3) fail("three meters per cluster");
  const gpuValues = await gpuMeter.evaluate((m) => [m.min, m.max, m.value, m.getAttribute("max"), m.getAttribute("value")].join(" "));
  if (gpuValues !== "0 2 0 2 0") fail(`GPU meter (min max value, as properties then attributes): ${gpuValues}`);
  await check(page, "clusters");

  step = "submit with a live preview and inline field errors";
  const adminToken = (await api("POST", "/auth/login", undefined, { username: adminName, password: PASSWORD })).access_token;
  await page.getByRole("link", { name: "Submit" }).click();
  await page.getByRole("heading", { name: "Submit a deployment" }).waitFor();
  await page.getByLabel("Name").fill("train-1");
  await page.getByLabel("Image").fill("ghcr.io/acme/trainer:1.4");
  await page.getByLabel("GPUs").fill("2");
  await page.getByLabel("Priority").fill("20");
  await page.locator("#preview").getByText("Starts now on gpu-a.").waitFor();
  await allowing(/status of 422/, async () => {
    await page.getByLabel("CPU cores").fill("-1");
    await page.locator('[aria-invalid="true"]').first().waitFor();
    const message = await page.locator(".field-error").first().textContent();
    if (!message) fail("a field error in words");
    await check(page, "submit-field-error");
    await page.getByLabel("CPU cores").fill("1");
    await page.locator('[aria-invalid="true"]').waitFor({ state: "detached" });
  });
  await page.locator("#preview").getByText("Starts now on gpu-a.").waitFor();
  await check(page, "submit");
  await page.getByRole("button", { name: "Submit deployment" }).click();
  await page.getByRole("heading", { name: "Deployment train-1" }).waitFor();
  step = "watch it run";
  await page.locator(".status-running").first().waitFor({ timeout: TIMEOUT });
  await check(page, "deployment-running");

  step = "a preemption: the preview names the victim, the pages link both ways";
  await page.getByRole("link", { name: "Submit" }).click();
  await page.getByLabel("Name").fill("urgent");
  await page.getByLabel("Image").fill("ghcr.io/acme/serve:2");
  await page.getByLabel("GPUs").fill("2");
  await page.getByLabel("Priority").fill("90");
  await page.locator("#preview").getByText("Starts on gpu-a by preempting train-1 (priority 20).").waitFor();
  await check(page, "submit-preempting");
  await page.getByRole("button", { name: "Submit deployment" }).click();
  await page.getByRole("heading", { name: "Deployment urgent" }).waitFor();
  await page.locator(".status-running").first().waitFor();
  await page.getByRole("heading", { name: "Preempted to make room for it" }).waitFor();
  await check(page, "deployment-preemptor");
  await page.locator(".victims").getByRole("link", { name: "train-1" }).click();
  await page.getByRole("heading", { name: "Deployment train-1" }).waitFor();
  await page.locator(".timeline").getByRole("link", { name: "urgent (priority 90)" }).first().waitFor();
  await check(page, "deployment-victim");

  step = "the preview of work that would wait, and of work that can never run";
  await page.getByRole("link", { name: "Submit" }).click();
  await page.getByLabel("Name").fill("later");
  await page.getByLabel("Image").fill("ghcr.io/acme/trainer:1.4");
  await page.getByLabel("GPUs").fill("2");
  await page.getByLabel("Priority").fill("10");
  await page.locator("#preview").getByText("Waits: needs 2 more GPUs on cluster gpu-a.").waitFor();
  await check(page, "submit-waits");
  await page.getByLabel("GPUs").fill("5");
  await page.locator("#preview").getByText(/^Cannot run: /).waitFor();
  await check(page, "submit-rejected");

  step = "the queue: the victim waits, with its reason and GPU shortfall";
  await page.getByRole("link", { name: "Queue", exact: true }).click();
  await page.getByRole("heading", { name: "Queue" }).waitFor();
  const row = page.getByRole("row", { name: /train-1/ });
  await row.waitFor();
  if (!/needs 2 more GPUs/.test(await row.textContent())) fail(`reason: ${await row.textContent()}`);

  step = "a deployment submitted through the API appears within seconds, without a reload";
  await page.evaluate(() => (window.__noReload = true));
  await api("POST", "/deployments", adminToken, { organization_id: org, name: "api-job", image: "busybox:1", resources: { cpu_cores: 1, ram_gib: 1, gpu_count: 1 }, priority: 10 });
  const started = Date.now();
  await page.getByRole("row", { name: /api-job/ }).waitFor({ timeout: 3000 });
  const seenAfter = Date.now() - started;
  if (!(await page.evaluate(() => window.__noReload === true))) fail("the page reloaded");
  await check(page, "queue");

  step = "running work";
  await page.getByRole("link", { name: "Running" }).click();
  await page.getByRole("row", { name: /urgent/ }).waitFor();
  await check(page, "running");
  await page.getByRole("link", { name: "Clusters" }).click();
  await page.getByRole("meter", { name: /GPU/ }).and(page.locator('[value="2"]')).waitFor();
  await check(page, "clusters-in-use");

  step = "a phone-sized screen";
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  watch(phone, "phone");
  const ppage = await phone.newPage();
  await ppage.goto(`${base}/console/`);
  await ppage.getByLabel("Username or email").fill(adminName);
  await ppage.getByLabel("Password").fill(PASSWORD);
  await ppage.getByRole("button", { name: "Sign in" }).click();
  await ppage.getByRole("heading", { name: "Clusters" }).waitFor();
  await check(ppage, "phone-clusters");
  await ppage.getByRole("link", { name: "Queue", exact: true }).click();
  await ppage.getByRole("row", { name: /train-1/ }).waitFor();
  await check(ppage, "phone-queue");
  await ppage.getByRole("link", { name: "Submit" }).click();
  await check(ppage, "phone-submit");

  step = "admin: members";
  await page.getByRole("link", { name: "Members" }).click();
  await page.getByRole("row", { name: new RegExp(adminName) }).waitFor();
  await check(page, "members");

  step = "admin: invites (create, copy, revoke)";
  await page.getByRole("link", { name: "Invites" }).click();
  await page.getByRole("heading", { name: "Invites" }).waitFor();
  await page.getByLabel("Role").selectOption("viewer");
  await page.getByRole("button", { name: "Create invite" }).click();
  const code = (await page.locator(".notice code.secret").textContent()).trim();
  await page.getByRole("button", { name: "Copy invite code" }).click();
  await text(page, "Copied");
  if ((await page.evaluate(() => navigator.clipboard.readText())) !== code) fail("the copied code");
  await page.getByLabel("Role").selectOption("developer");
  await page.getByRole("button", { name: "Create invite" }).click();
  await page.getByRole("button", { name: "Revoke developer invite" }).nth(1).click();
  await page.getByRole("cell", { name: "revoked" }).waitFor();
  await check(page, "invites");

  step = "admin: tokens (the secret shown once)";
  await page.getByRole("link", { name: "Tokens" }).click();
  await page.getByLabel("Name").fill("ci");
  await page.getByRole("button", { name: "Create token" }).click();
  const secret = (await page.locator("#once-secret").textContent()).trim();
  if (!secret.startsWith("hvt_")) fail(`secret ${secret}`);
  await check(page, "tokens");
  await page.getByRole("button", { name: "I have copied it" }).click();
  if ((await page.locator("#once-secret").count()) !== 0) fail("the secret is still shown");
  await page.getByRole("row", { name: /ci/ }).waitFor();
  if ((await page.content()).includes(secret)) fail("the secret is still in the page");

  step = "admin: webhooks and their deliveries";
  const hits = [];
  const receiver = createServer((req, res) => {
    hits.push(req.headers["webhook-id"]);
    req.resume();
    res.writeHead(204).end();
  });
  await new Promise((r) => receiver.listen(0, "127.0.0.1", r));
  const hookUrl = `http://127.0.0.1:${receiver.address().port}/hook`;
  await page.getByRole("link", { name: "Webhooks" }).click();
  await page.getByLabel("URL").fill(hookUrl);
  await page.getByLabel("Description").fill("console test");
  await page.getByRole("button", { name: "Add webhook" }).click();
  const whsec = (await page.locator("#once-secret").textContent()).trim();
  if (!whsec.startsWith("whsec_")) fail(`webhook secret ${whsec}`);
  await check(page, "webhooks");
  await api("POST", "/deployments", adminToken, { organization_id: org, name: "hooked", image: "busybox:1", resources: { cpu_cores: 1, ram_gib: 1, gpu_count: 0 } });
  await page.getByRole("link", { name: hookUrl }).click();
  await page.getByText(/delivered \(HTTP 204\)/).first().waitFor({ timeout: 15_000 });
  await check(page, "webhook-deliveries");
  receiver.close();

  step = "admin: the audit log";
  await page.getByRole("link", { name: "Audit log" }).click();
  await page.getByRole("cell", { name: "cluster.created" }).waitFor();
  await page.getByRole("cell", { name: "token.created" }).waitFor();
  await check(page, "audit");

  step = "settings (DESIGN §9): save, and a field error in words";
  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByLabel("Highest priority for developers and tokens").fill("60");
  await page.getByLabel("Aging: points per hour waited").fill("10");
  await page.getByRole("button", { name: "Save settings" }).click();
  await text(page, "Saved");
  const saved = await api("GET", `/organizations/${org}/settings`, adminToken);
  if (saved.developer_max_priority !== 60 || saved.aging_points_per_hour !== 10) fail(`settings: ${JSON.stringify(saved)}`);
  await allowing(/status of 422/, async () => {
    await page.getByLabel("Highest priority for developers and tokens").fill("500");
    await page.getByRole("button", { name: "Save settings" }).click();
    await page.locator('[aria-invalid="true"]').waitFor();
  });
  await check(page, "settings");
  await page.getByLabel("Highest priority for developers and tokens").fill("60");

  step = "usage and quotas: set a token's quota, then remove it";
  await page.getByRole("link", { name: "Usage" }).click();
  const ciRow = page.getByRole("row", { name: /ci \(API token\)/ });
  await ciRow.waitFor();
  await ciRow.locator("summary").click();
  await page.getByLabel("GPUs (ci)").fill("1");
  await page.getByRole("button", { name: "Set quota of ci" }).click();
  await ciRow.getByText("1 GPU").first().waitFor();
  await check(page, "usage");
  await page.getByRole("button", { name: "Remove quota of ci" }).click();
  await ciRow.locator("summary").getByText("none").waitFor();

  step = "a viewer: signs in with the keyboard, joins with the code, sees no action it may not take";
  const viewerName = `vic${run}`;
  await apiUser(viewerName);
  const viewer = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  watch(viewer, "viewer");
  const vpage = await viewer.newPage();
  await vpage.goto(`${base}/console/`);
  await vpage.getByRole("heading", { name: "Sign in to Hypervisor" }).waitFor();
  await vpage.keyboard.press("Tab");
  if ((await vpage.evaluate(() => document.activeElement?.getAttribute("name"))) !== "username") fail("Tab reaches the username field first");
  const outline = await vpage.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  if (outline === "none") fail("the focused field shows no focus outline");
  await vpage.keyboard.type(viewerName);
  await vpage.keyboard.press("Tab");
  await vpage.keyboard.type(PASSWORD);
  await vpage.keyboard.press("Enter");
  await vpage.getByRole("heading", { name: "Organizations" }).waitFor();
  await vpage.getByLabel("Invite code").fill(code);
  await vpage.getByRole("button", { name: "Join organization" }).click();
  await vpage.getByRole("heading", { name: "Clusters" }).waitFor();
  await vpage.getByRole("heading", { name: "gpu-a" }).waitFor();
  for (const forbidden of ["Create a cluster", "Resize or delete gpu-a"]) {
    if ((await vpage.getByText(forbidden).count()) !== 0) fail(`a viewer sees "${forbidden}"`);
  }
  for (const link of ["Submit", "Invites", "Tokens", "Webhooks", "Audit log"]) {
    if ((await vpage.getByRole("link", { name: link, exact: true }).count()) !== 0) fail(`a viewer sees the ${link} link`);
  }
  await check(vpage, "viewer-clusters");
  await vpage.getByRole("link", { name: "Queue", exact: true }).click();
  await vpage.getByRole("link", { name: "train-1" }).click();
  await vpage.getByRole("heading", { name: "Deployment train-1" }).waitFor();
  const trainUrl = vpage.url();
  if ((await vpage.getByRole("button", { name: /Cancel|complete/i }).count()) !== 0) fail("a viewer sees cancel or complete");
  await check(vpage, "viewer-deployment");
  await vpage.getByRole("link", { name: "Members" }).click();
  await vpage.getByRole("row", { name: new RegExp(viewerName) }).waitFor();
  if ((await vpage.getByRole("button", { name: /Remove/ }).count()) !== 0) fail("a viewer sees Remove");
  await check(vpage, "viewer-members");
  await vpage.getByRole("link", { name: "Settings" }).click();
  await vpage.getByText("Highest priority for developers and tokens").waitFor();
  if ((await vpage.getByRole("button", { name: "Save settings" }).count()) !== 0) fail("a viewer sees Save settings");
  await check(vpage, "viewer-settings");
  await vpage.getByRole("link", { name: "Usage" }).click();
  await vpage.getByRole("row", { name: new RegExp(adminName) }).waitFor();
  if ((await vpage.getByRole("button", { name: /quota/ }).count()) !== 0) fail("a viewer sees a quota button");
  await check(vpage, "viewer-usage");

  step = "admin: a member's role, which the member's own page follows live";
  await page.getByRole("link", { name: "Members" }).click();
  await page.getByLabel(`Role of ${viewerName}`).selectOption("developer");
  await vpage.getByRole("link", { name: "Submit", exact: true }).waitFor({ timeout: 5000 });
  if ((await api("GET", `/organizations/${org}/members`, adminToken)).find((m) => m.username === viewerName)?.role !== "developer") fail("the role change reached the API");
  await check(page, "members-roles");
  await page.getByLabel(`Role of ${viewerName}`).selectOption("viewer");
  await vpage.getByRole("link", { name: "Submit", exact: true }).waitFor({ state: "detached", timeout: 5000 });

  step = "cancel and complete; the freed GPUs start the victim again, live";
  await vpage.goto(trainUrl);
  await vpage.locator(".status-pending").first().waitFor();
  await page.goto(`${base}/console/o/${org}/running`);
  await page.getByRole("link", { name: "urgent" }).click();
  await page.getByRole("heading", { name: "Deployment urgent" }).waitFor();
  await page.getByRole("button", { name: "Mark complete" }).click();
  await page.locator(".status-succeeded").first().waitFor();
  await vpage.locator(".status-running").first().waitFor({ timeout: 5000 });
  await page.goto(`${base}/console/o/${org}/deployments/${(await api("GET", `/deployments?organization_id=${org}&status=pending`, adminToken)).items.find((d) => d.name === "api-job").id}`);
  await page.getByRole("button", { name: "Cancel deployment" }).click();
  await page.locator(".status-cancelled").first().waitFor();
  await check(page, "deployment-cancelled");

  step = "sign out";
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in to Hypervisor" }).waitFor();

  await browser.close();
  if (problems.length) {
    step = "problems seen along the way";
    fail(`\n  ${problems.join("\n  ")}`);
  }
  console.log(`live update seen after ${seenAfter} ms`);
  console.log(`console e2e: ok (${pages} pages, ${axeChecks} axe checks, screenshots in ${shots})`);
}

main().catch((err) => {
  console.error(`console e2e FAILED at ${err.message}`);
  if (problems.length) console.error(`also:\n  ${problems.join("\n  ")}`);
  process.exit(1);
});
