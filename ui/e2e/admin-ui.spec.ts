/**
 * The admin UI end to end, against the real llm-quota binary and the fake Ollama, in Debian's
 * Chromium: sign in, create a key and see its plaintext once, call the proxy with it, watch
 * the usage move, edit a quota, read the usage report and download it as CSV, a team with a
 * key in it and the team's usage, deactivate the key and see the proxy refuse it, rotate its
 * secret, and read the audit trail. Screenshots of every page go to docs/images/ (the README
 * shows them).
 */
import { expect, test, type Page } from "@playwright/test";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { UsageRow } from "../src/api/types";
import { repoRoot, startStack, type Stack } from "./stack.mjs";

test.describe.configure({ mode: "serial" });

/** docs/images by default; ui/run-tests.sh points this elsewhere unless UPDATE_SCREENSHOTS=1. */
const IMAGES = process.env.SCREENSHOT_DIR ?? join(repoRoot, "docs", "images");
let stack: Stack;
let page: Page;
let plaintext = "";

/** The admin API, straight (for setting up data the UI flow is not about). */
async function admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(stack.admin + path, {
    method,
    headers: { Authorization: `Bearer ${stack.password}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return (response.status === 204 ? undefined : await response.json()) as T;
}

/** One chat call through the proxy with `key`; returns the status. */
async function chat(key: string, prompt = "Summarise the quarterly report in three bullet points."): Promise<number> {
  const response = await fetch(`${stack.proxy}/api/chat`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model: "llama3", messages: [{ role: "user", content: prompt }], stream: false }),
  });
  await response.arrayBuffer();
  return response.status;
}

/** Today in the gateway's zone (the stack runs with APP_TZ=Europe/Berlin, the browser too). */
function today(): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone: "Europe/Berlin", year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date());
}

/** `2026-11-30` + `days` → `YYYY-MM-DD`. */
function shiftDay(day: string, days: number): string {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** `text` as a regular expression matching it literally. */
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** Numbers as the UI writes them: `1,234`. */
const fmt = (n: number) => n.toLocaleString("en-US");
/** GPU seconds as the Usage page shows them: at most one decimal. */
const secs = (n: number) => n.toLocaleString("en-US", { maximumFractionDigits: 1 });

async function shot(name: string, options: { fullPage?: boolean } = {}) {
  mkdirSync(IMAGES, { recursive: true });
  // Let transitions settle; keep the caret and passing toasts out of the picture.
  await page.waitForTimeout(350);
  await page.screenshot({
    path: join(IMAGES, `${name}.png`),
    caret: "hide",
    animations: "disabled",
    fullPage: options.fullPage,
    style: ".toasts { visibility: hidden; }",
  });
}

/** How a key was used on the days before the run: requests per weekday and weekend day, tokens per request, models. */
interface History {
  keyId: number;
  weekday: [number, number];
  weekend: [number, number];
  prompt: [number, number];
  completion: [number, number];
  /** Each request goes to one of these, by weight. */
  models: Record<string, number>;
}

/**
 * Past days of usage for the screenshot keys, written into the usage log the way the gateway
 * writes it (one row per key, day and model), so the charts show a month rather than one bar.
 * Screenshots only: every assertion below is about real calls through the proxy, or reads the
 * report from the API.
 */
function backfillHistory(histories: History[]) {
  const script = `
import sqlite3, sys, json, datetime, random
db, histories = sys.argv[1], json.loads(sys.argv[2])
random.seed(7)
c = sqlite3.connect(db, timeout=10)
today = datetime.date.today()
rows = []
for h in histories:
    models = list(h['models'])
    weights = [h['models'][m] for m in models]
    for back in range(1, 30):
        day = today - datetime.timedelta(days=back)
        n = random.randint(*(h['weekend'] if day.weekday() >= 5 else h['weekday']))
        per_model = {}
        for _ in range(n):
            m = random.choices(models, weights)[0]
            r, p, q = per_model.get(m, (0, 0, 0))
            per_model[m] = (r + 1, p + random.randint(*h['prompt']), q + random.randint(*h['completion']))
        for m, (r, p, q) in per_model.items():
            rows.append((h['keyId'], day.isoformat(), m, r, p, q))
# The gateway sums finished requests per key, day and model (usage_daily).
c.executemany('insert into usage_daily (key_id, day, model, requests, prompt_tokens, completion_tokens) values (?,?,?,?,?,?)', rows)
c.commit()
`;
  execFileSync("python3", ["-c", script, join(stack.dir, "q.db"), JSON.stringify(histories)]);
}

test.beforeAll(async ({ browser }) => {
  stack = await startStack();
  const context = await browser.newContext({ permissions: ["clipboard-read", "clipboard-write"] });
  page = await context.newPage();
});

test.afterAll(async () => {
  await page?.context().close();
  await stack?.stop();
});

test("the saved OpenAPI document the UI's types come from matches the live one", async () => {
  const live = await (await fetch(`${stack.admin}/api/openapi.json`)).json();
  const saved = JSON.parse(readFileSync(join(repoRoot, "ui", "src", "api", "openapi.json"), "utf8"));
  expect(live, "ui/src/api/openapi.json is stale: see ui/README.md, 'The API types'").toEqual(saved);
});

test("the admin listener serves the app on deep links, and /api stays JSON", async () => {
  const deep = await fetch(`${stack.admin}/keys/42`);
  expect(deep.status).toBe(200);
  expect(await deep.text()).toContain('<div id="root">');
  const api = await fetch(`${stack.admin}/api/nope`);
  expect(api.status).toBe(404);
  expect(await api.json()).toEqual({ error: "no such endpoint" });
});

test("sign in: a wrong password is refused, the right one is kept in sessionStorage only", async () => {
  await page.goto(stack.admin);
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  await shot("login");
  await page.getByLabel("Admin password").fill("not-the-password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("alert")).toContainText("Wrong password");
  await page.getByLabel("Admin password").fill(stack.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
  await expect(page.getByText("No API keys yet")).toBeVisible();
  const storage = await page.evaluate(() => ({ session: { ...sessionStorage }, local: { ...localStorage } }));
  expect(Object.values(storage.session)).toContain(stack.password);
  expect(storage.local).toEqual({});
});

test("create a key: the plaintext is shown once, with a copy button", async () => {
  await page.getByRole("button", { name: "Create the first key" }).click();
  const dialog = page.getByRole("dialog", { name: "Create API key" });
  await dialog.getByLabel("Name").fill("alice-laptop");
  await dialog.getByLabel("Tokens per day").fill("50,000");
  await dialog.getByLabel("Tokens per month").fill("1M");
  await dialog.getByLabel("Requests per day").fill("500");
  await expect(dialog.getByText("1,000,000 tokens")).toBeVisible();
  await dialog.getByLabel("GPU seconds per day").fill("3,600");
  await dialog.getByLabel("Requests per minute").fill("120");
  await expect(dialog.getByLabel("Priority")).toHaveValue("1");
  await dialog.getByLabel("Priority").fill("3");
  await expect(dialog.getByText("3 of 10")).toBeVisible();
  await shot("create-key");
  await dialog.getByRole("button", { name: "Create key" }).click();

  const created = page.getByRole("dialog", { name: "Key created" });
  await expect(created.getByText("It will not be shown again")).toBeVisible();
  plaintext = await created.getByLabel("The new API key").inputValue();
  expect(plaintext).toMatch(/^sk-[A-Za-z0-9_-]{20,}$/);
  await created.getByRole("button", { name: "Copy key" }).click();
  await expect(created.getByRole("button", { name: "Copied" })).toBeVisible();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(plaintext);
  await shot("key-created");
  await created.getByRole("button", { name: /I have stored the key/ }).click();
  await expect(created).toBeHidden();

  const row = page.getByRole("row", { name: /alice-laptop/ });
  await expect(row).toContainText(plaintext.slice(0, 11));
  expect(await page.content()).not.toContain(plaintext);
  await page.reload();
  await expect(page.getByRole("row", { name: /alice-laptop/ })).toBeVisible();
  expect(await page.content()).not.toContain(plaintext);
});

test("calls through the proxy move the key's usage", async () => {
  const row = page.getByRole("row", { name: /alice-laptop/ });
  await expect(row).toContainText("0 / 500");
  for (let i = 0; i < 3; i++) expect(await chat(plaintext)).toBe(200);
  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(row).toContainText("3 / 500");
  const [key] = await admin<{ daily_gpu_seconds_limit: number | null; usage: { day: { tokens: number; gpu_seconds: number } } }[]>("GET", "/api/api-keys");
  expect(key.usage.day.tokens).toBeGreaterThan(0);
  await expect(row).toContainText(`${key.usage.day.tokens} / 50K`);
  // The GPU time the three answers took on the host, against the hour typed at creation.
  expect(key.daily_gpu_seconds_limit).toBe(3600);
  expect(key.usage.day.gpu_seconds).toBeGreaterThan(0);
  await expect(row).toContainText("/ 1 h");
});

test("edit a quota from the table", async () => {
  await page.getByRole("button", { name: "Edit alice-laptop" }).click();
  const dialog = page.getByRole("dialog", { name: "Edit “alice-laptop”" });
  await expect(dialog.getByLabel("Tokens per day")).toHaveValue("50,000");
  await dialog.getByLabel("Tokens per day").fill("80000");
  await dialog.getByRole("button", { name: "Save changes" }).click();
  await expect(dialog).toBeHidden();
  await expect(page.getByRole("row", { name: /alice-laptop/ })).toContainText("/ 80K");
  const keys = await admin<{ name: string; daily_token_limit: number | null; monthly_token_limit: number | null; priority: number }[]>("GET", "/api/api-keys");
  // The pacing typed at creation is kept; only the changed limit was sent.
  expect(keys[0]).toMatchObject({
    daily_token_limit: 80000,
    monthly_token_limit: 1_000_000,
    requests_per_minute: 120,
    tokens_per_minute: null,
    max_parallel_requests: null,
    priority: 3,
  });
});

test("key detail: budget, reset times with their zone, and the 30-day chart", async () => {
  // More keys, so the list and the chart look like a gateway in use.
  const research = await admin<{ id: number; key: string }>("POST", "/api/api-keys", {
    name: "research-team",
    daily_token_limit: 40_000,
    monthly_token_limit: 600_000,
    daily_request_limit: 200,
    monthly_request_limit: 5_000,
    allowed_models: ["llama3", "qwen3:8b"],
  });
  const ci = await admin<{ id: number; key: string }>("POST", "/api/api-keys", {
    name: "ci-pipeline",
    expires_at: new Date(Date.now() + 45 * 86_400_000).toISOString(),
    daily_request_limit: 5,
    monthly_request_limit: 100,
  });
  const bob = await admin<{ id: number }>("POST", "/api/api-keys", { name: "bob-notebook", daily_token_limit: 10_000 });
  await admin("PUT", `/api/api-keys/${bob.id}/deactivate`);
  for (let i = 0; i < 4; i++) expect(await chat(ci.key, "Run the nightly evaluation prompt.")).toBe(200);
  for (let i = 0; i < 6; i++) expect(await chat(research.key, "Explain the attention mechanism of a transformer in detail, with an example.")).toBe(200);
  const keysNow = await admin<{ id: number; name: string }[]>("GET", "/api/api-keys");
  const aliceId = keysNow.find((k) => k.name === "alice-laptop")?.id ?? 0;
  // research-team uses the most, alice now and then, the CI a few requests each weekday night.
  backfillHistory([
    { keyId: research.id, weekday: [9, 22], weekend: [2, 5], prompt: [180, 900], completion: [120, 650], models: { llama3: 3, "qwen3:8b": 1 } },
    { keyId: aliceId, weekday: [3, 9], weekend: [0, 2], prompt: [120, 600], completion: [80, 500], models: { llama3: 2, "qwen3:8b": 1, "mistral:7b": 1 } },
    { keyId: ci.id, weekday: [3, 5], weekend: [0, 0], prompt: [300, 700], completion: [100, 300], models: { llama3: 1 } },
  ]);

  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(page.getByRole("row", { name: /ci-pipeline/ })).toContainText("4 / 5");
  await expect(page.getByRole("row", { name: /bob-notebook/ })).toContainText("Inactive");
  await shot("keys");

  await page.getByRole("link", { name: "research-team" }).click();
  await expect(page.getByRole("heading", { name: /research-team/, level: 1 })).toBeVisible();
  // Every chat has ended: nothing holds a reservation any more.
  await expect(page.getByTestId("in-flight")).toHaveText("None");
  await expect(page.getByRole("region", { name: "Tokens today" })).toContainText(/Resets \d+ \w+ \d{4}, 00:00 UTC\+0[12]:00/);
  const chart = page.getByRole("group", { name: /Usage chart, 30 days/ });
  await expect(chart).toBeVisible();
  await chart.focus();
  await page.keyboard.press("ArrowLeft");
  await expect(page.locator(".chart-readout")).toContainText("requests");
  await page.mouse.move(0, 0);
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot("key-detail", { fullPage: true });

  // The key page reached by its URL directly (SPA fallback), with alice's real usage.
  const keys = await admin<{ id: number; name: string }[]>("GET", "/api/api-keys");
  const alice = keys.find((k) => k.name === "alice-laptop");
  await page.goto(`${stack.admin}/keys/${alice?.id}`);
  await expect(page.getByRole("heading", { name: /alice-laptop/, level: 1 })).toBeVisible();
  await expect(page.getByRole("region", { name: "Requests today" })).toContainText("497");
  // The pacing typed in the create dialog.
  await expect(page.getByRole("heading", { name: "Pacing", level: 2 })).toBeVisible();
  await expect(page.getByRole("region", { name: "Requests per minute" })).toContainText("120 requests");
  await expect(page.getByRole("region", { name: "Tokens per minute" })).toContainText("No limit");
  await expect(page.getByRole("region", { name: "Priority" })).toContainText("3 of 10");
});

test("usage: this month by default, rows and totals, the stacked chart, and the CSV download", async () => {
  const to = today();
  const monthStart = `${to.slice(0, 8)}01`;
  const from = shiftDay(to, -29);
  const report = (first: string, groupBy: string) => admin<UsageRow[]>("GET", `/api/usage?from=${first}&to=${to}&group_by=${groupBy}`);
  // The gateway adds finished requests to the report in batches: wait until today's are in.
  await expect
    .poll(async () => {
      const byKey = await report(to, "key");
      return Object.fromEntries(byKey.map((r) => [r.key_name, r.requests]));
    })
    .toMatchObject({ "alice-laptop": 3, "ci-pipeline": 4 });

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Usage" }).click();
  await expect(page.getByRole("heading", { name: "Usage", level: 1 })).toBeVisible();
  await expect(page.getByLabel("From", { exact: true })).toHaveValue(monthStart);
  await expect(page.getByLabel("To", { exact: true })).toHaveValue(to);
  for (const name of ["Key", "Model", "Day"]) await expect(page.getByRole("checkbox", { name })).toBeChecked();

  // The last 30 days, with the history backfilled for research-team.
  await page.getByLabel("From", { exact: true }).fill(from);
  const [total] = await report(from, "");
  const rows = await report(from, "key,model,day");
  const totalRow = page.getByRole("row", { name: /^Total/ });
  await expect(totalRow.getByRole("cell")).toHaveText([
    fmt(total.requests),
    fmt(total.prompt_tokens),
    fmt(total.completion_tokens),
    fmt(total.prompt_tokens + total.completion_tokens),
    secs(total.gpu_seconds),
  ]);
  await expect(page.getByText(`${fmt(rows.length)} rows, sorted by day`)).toBeVisible();
  const first = rows[0];
  await expect(
    page.getByRole("row", { name: new RegExp(`^${literal(first.key_name ?? "")}\\s+${literal(first.model ?? "")}\\s+${first.date}\\s`) }).first(),
  ).toBeVisible();

  // One bar per day, stacked by key: research-team has the most tokens.
  await expect(page.locator(".chart-day")).toHaveCount(30);
  const keys = page.getByRole("list", { name: "Keys in the chart" });
  await expect(keys.getByRole("listitem").first()).toContainText("research-team");
  await expect(keys.getByRole("link", { name: "alice-laptop" })).toBeVisible();
  await page.mouse.move(0, 0);
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  await shot("usage");

  await page.getByRole("radio", { name: "Model" }).click();
  await expect(page.getByRole("list", { name: "Models in the chart" }).getByRole("listitem").first()).toBeVisible();
  await page.getByRole("radio", { name: "Key" }).click();
  await expect(keys).toBeVisible();

  // Grouped by key only: one row per key with requests (bob-notebook has none).
  await page.getByRole("checkbox", { name: "Model" }).uncheck();
  await page.getByRole("checkbox", { name: "Day" }).uncheck();
  const byKey = await report(from, "key");
  const table = page.getByRole("table", { name: /^Usage by/ });
  await expect(table.getByRole("columnheader")).toHaveText(["Key", "Requests", "Prompt tokens", "Completion tokens", "Total tokens", "GPU seconds"]);
  for (const r of byKey) {
    await expect(table.getByRole("row", { name: new RegExp(`^${literal(r.key_name ?? "")}\\s`) }).getByRole("cell")).toHaveText([
      r.key_name ?? "",
      fmt(r.requests),
      fmt(r.prompt_tokens),
      fmt(r.completion_tokens),
      fmt(r.prompt_tokens + r.completion_tokens),
      secs(r.gpu_seconds),
    ]);
  }
  await expect(table.getByRole("row", { name: /bob-notebook/ })).toHaveCount(0);
  await expect(totalRow.getByRole("cell").first()).toHaveText(fmt(total.requests));

  // The CSV: the same rows, fetched with the admin password, saved under the API's name.
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
  expect(download.suggestedFilename()).toBe(`llm-quota-usage-${from}_${to}.csv`);
  const saved = readFileSync(await download.path(), "utf8");
  const expected = await (
    await fetch(`${stack.admin}/api/usage?from=${from}&to=${to}&group_by=key&format=csv`, { headers: { Authorization: `Bearer ${stack.password}` } })
  ).text();
  expect(saved).toBe(expected);
  expect(saved.split("\r\n")[0]).toBe("key_id,key_name,model,date,requests,prompt_tokens,completion_tokens,gpu_seconds,load_seconds,prompt_eval_seconds,eval_seconds,team_id,team_name");
  expect(saved.split("\r\n").filter(Boolean)).toHaveLength(byKey.length + 1);

  // A last day before the first is refused here, before the API would.
  await page.getByLabel("To", { exact: true }).fill(shiftDay(from, -1));
  await expect(page.getByRole("alert")).toContainText("The last day is before the first day.");
  await expect(page.getByRole("button", { name: "Download CSV" })).toBeDisabled();
});

test("teams: a shared budget, a key created in it, the team's members and usage", async () => {
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Teams" }).click();
  await expect(page.getByRole("heading", { name: "Teams", level: 1 })).toBeVisible();
  await expect(page.getByText("No teams yet")).toBeVisible();

  // A team with a daily request limit, typed with a thousands separator.
  await page.getByRole("button", { name: "New team" }).click();
  const dialog = page.getByRole("dialog", { name: "New team" });
  await dialog.getByLabel("Name", { exact: true }).fill("data-science");
  await dialog.getByLabel("Description").fill("Notebooks and batch jobs of the data team");
  await dialog.getByLabel("Requests per day").fill("1,000");
  await expect(dialog.getByText("1,000 requests")).toBeVisible();
  await shot("create-team");
  await dialog.getByRole("button", { name: "Create team" }).click();
  await expect(dialog).toBeHidden();
  const teamRow = page.getByRole("row", { name: /data-science/ });
  await expect(teamRow).toContainText("Notebooks and batch jobs of the data team");
  await expect(teamRow).toContainText("0 / 1,000");
  const [team] = await admin<{ id: number; name: string; daily_request_limit: number | null; key_count: number }[]>("GET", "/api/teams");
  expect(team).toMatchObject({ name: "data-science", daily_request_limit: 1000, key_count: 0 });

  // The name is taken now: the API's refusal stays in the dialog.
  await page.getByRole("button", { name: "New team" }).click();
  await dialog.getByLabel("Name", { exact: true }).fill("data-science");
  await dialog.getByRole("button", { name: "Create team" }).click();
  await expect(dialog.getByRole("alert")).toContainText('"data-science" exists already');
  await dialog.getByRole("button", { name: "Cancel" }).click();
  await expect(dialog).toBeHidden();

  // A key created in the team from the keys page.
  await nav.getByRole("link", { name: "API keys" }).click();
  await page.getByRole("button", { name: "Create key" }).click();
  const create = page.getByRole("dialog", { name: "Create API key" });
  await create.getByLabel("Name", { exact: true }).fill("data-notebook");
  await create.getByLabel("Team", { exact: true }).selectOption({ label: "data-science" });
  await create.getByRole("button", { name: "Create key" }).click();
  const created = page.getByRole("dialog", { name: "Key created" });
  const teamKey = await created.getByLabel("The new API key").inputValue();
  expect(teamKey).toMatch(/^sk-[A-Za-z0-9_-]{20,}$/);
  await created.getByRole("button", { name: /I have stored the key/ }).click();
  await expect(created).toBeHidden();
  const keyRow = page.getByRole("row", { name: /data-notebook/ });
  await expect(keyRow.getByRole("link", { name: "data-science" })).toHaveAttribute("href", `/teams/${team.id}`);
  const keys = await admin<{ name: string; team?: { id: number; name: string } | null }[]>("GET", "/api/api-keys");
  expect(keys.find((k) => k.name === "data-notebook")?.team).toEqual({ id: team.id, name: "data-science" });
  expect(keys.find((k) => k.name === "alice-laptop")?.team ?? null).toBeNull();

  // The team filter above the table.
  const filter = page.getByRole("combobox", { name: "Filter by team" });
  await filter.selectOption({ label: "data-science" });
  await expect(page.getByRole("row", { name: /data-notebook/ })).toBeVisible();
  await expect(page.getByRole("row", { name: /alice-laptop/ })).toHaveCount(0);
  await filter.selectOption({ label: "All keys" });
  await expect(page.getByRole("row", { name: /alice-laptop/ })).toBeVisible();

  // Two calls with the team's key count against the team's daily requests.
  for (let i = 0; i < 2; i++) expect(await chat(teamKey, "Tabulate the survey answers by region.")).toBe(200);

  await keyRow.getByRole("link", { name: "data-science" }).click();
  await expect(page).toHaveURL(new RegExp(`/teams/${team.id}$`));
  await expect(page.getByRole("heading", { name: "data-science", level: 1 })).toBeVisible();
  await expect(page.getByTestId("team-key-count")).toHaveText("1");
  const members = page.getByRole("table", { name: /^Keys of data-science/ });
  await expect(members.getByRole("link", { name: "data-notebook" })).toBeVisible();
  await expect(members.getByRole("row", { name: /alice-laptop/ })).toHaveCount(0);
  const requestsToday = page.getByRole("region", { name: "Requests today" });
  await expect(async () => {
    await page.getByRole("button", { name: "Refresh" }).click();
    await expect(requestsToday).toContainText("2 / 1,000", { timeout: 1_000 });
  }).toPass({ timeout: 15_000 });
  await expect(requestsToday).toContainText("998 requests left");
  const teamNow = await admin<{ key_count: number; usage: { day: { requests: number; tokens: number } } }>("GET", `/api/teams/${team.id}`);
  expect(teamNow.key_count).toBe(1);
  expect(teamNow.usage.day.requests).toBe(2);
  expect(teamNow.usage.day.tokens).toBeGreaterThan(0);
  await expect(page.getByRole("region", { name: "Tokens today" })).toContainText(`${fmt(teamNow.usage.day.tokens)} used · no limit`);
  await page.mouse.move(0, 0);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot("team-detail", { fullPage: true });

  // The key's page names its team.
  await members.getByRole("link", { name: "data-notebook" }).click();
  await expect(page.getByRole("heading", { name: /data-notebook/, level: 1 })).toBeVisible();
  await expect(page.getByTestId("key-team").getByRole("link", { name: "data-science" })).toHaveAttribute("href", `/teams/${team.id}`);

  // The team cannot be deleted while it has a key: the API's message is shown.
  await page.goto(`${stack.admin}/teams/${team.id}`);
  await expect(page.getByRole("heading", { name: "data-science", level: 1 })).toBeVisible();
  await page.getByRole("button", { name: "Delete", exact: true }).click();
  const confirm = page.getByRole("alertdialog", { name: "Delete “data-science”?" });
  await confirm.getByRole("button", { name: "Delete team" }).click();
  await expect(confirm.getByRole("alert")).toContainText(/"data-science" still has 1 key/);
  await confirm.getByRole("button", { name: "Cancel" }).click();
  expect((await admin<unknown[]>("GET", "/api/teams")).length).toBe(1);

  // The list with the usage of the team's key.
  await nav.getByRole("link", { name: "Teams" }).click();
  await expect(teamRow).toContainText("2 / 1,000");
  await expect(teamRow.locator('[data-label="Keys"]')).toHaveText("1");
  await shot("teams");

  // The usage report of the team's keys only, and grouped by team.
  const to = today();
  await expect
    .poll(async () => (await admin<UsageRow[]>("GET", `/api/usage?from=${to}&to=${to}&group_by=key&team_id=${team.id}`)).map((r) => [r.key_name, r.requests]))
    .toEqual([["data-notebook", 2]]);
  await nav.getByRole("link", { name: "Usage" }).click();
  await expect(page.getByRole("heading", { name: "Usage", level: 1 })).toBeVisible();
  await page.getByRole("combobox", { name: "Team" }).selectOption({ label: "data-science" });
  await page.getByRole("checkbox", { name: "Model" }).uncheck();
  await page.getByRole("checkbox", { name: "Day" }).uncheck();
  const table = page.getByRole("table", { name: /^Usage by/ });
  await expect(table.locator("tbody tr")).toHaveCount(1);
  await expect(table.getByRole("row", { name: /^data-notebook\s/ }).getByRole("cell").nth(1)).toHaveText("2");
  await page.getByRole("checkbox", { name: "Team" }).check();
  await expect(table.getByRole("columnheader")).toHaveText(["Team", "Key", "Requests", "Prompt tokens", "Completion tokens", "Total tokens", "GPU seconds"]);
  await expect(table.getByRole("link", { name: "data-science" })).toHaveAttribute("href", `/teams/${team.id}`);
  // All keys again, by team: the keys without one are a row of their own.
  await page.getByRole("combobox", { name: "Team" }).selectOption({ label: "All keys" });
  await page.getByRole("checkbox", { name: "Key" }).uncheck();
  await expect(table.getByRole("row", { name: /^No team\s/ })).toBeVisible();
  await expect(table.getByRole("row", { name: /^data-science\s/ }).getByRole("cell").nth(1)).toHaveText("2");
});

test("settings: pick the default model from the live list, see the override, reset it", async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Settings" }).click();
  const card = page.locator("form", { has: page.getByRole("heading", { name: "Default model" }) });
  await expect(card.getByText("From configuration")).toBeVisible();
  await expect(card.getByLabel("Model")).toHaveValue("llama3:latest");
  await card.getByLabel("Model").selectOption("qwen3:8b");
  await card.getByRole("button", { name: "Save model" }).click();
  await expect(card.getByText("Override", { exact: true })).toBeVisible();
  await expect(card.getByText("Configured value:")).toContainText("llama3");
  const settings = await admin<{ default_model: string; overrides: { default_model: boolean } }>("GET", "/api/settings");
  expect(settings.overrides.default_model).toBe(true);
  expect(settings.default_model).toBe("qwen3:8b");
  await shot("settings");
  await card.getByRole("button", { name: "Reset to configuration" }).click();
  await expect(card.getByText("From configuration")).toBeVisible();
  expect((await admin<{ default_model: string }>("GET", "/api/settings")).default_model).toBe("llama3");
});

test("upstreams: health, models, in-flight requests and the load per model", async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Upstreams" }).click();
  const row = page.getByRole("row", { name: new RegExp(stack.ollama.replace(/[.]/g, "\\.")) });
  await expect(row).toContainText("Healthy");
  await expect(row).toContainText("qwen3:8b");
  await expect(page.getByRole("heading", { name: "Load per model", level: 2 })).toBeVisible();
  const load = page.getByRole("table", { name: "Running and waiting requests per model" });
  await expect(load.getByRole("columnheader", { name: "Model", exact: true })).toBeVisible();
  await expect(load.getByRole("columnheader", { name: "Running", exact: true })).toBeVisible();
  await expect(load.getByRole("columnheader", { name: "Waiting", exact: true })).toBeVisible();
  // The chats above were counted requests for llama3.
  await expect(load.getByRole("row", { name: /llama3/ })).toBeVisible();
  await shot("upstreams");
});

test("connect: the proxy URL and snippets to copy", async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Connect" }).click();
  await expect(page.getByText(stack.proxy, { exact: true })).toBeVisible();
  await expect(page.getByRole("tabpanel")).toContainText(`curl ${stack.proxy}/api/chat`);
  await page.getByRole("tab", { name: "Python · openai" }).click();
  await expect(page.getByRole("tabpanel")).toContainText(`base_url="${stack.proxy}/v1"`);
  await page.getByRole("tab", { name: "curl" }).click();
  await shot("connect");
});

test("deactivate the key: the proxy answers 401", async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API keys" }).click();
  await page.getByRole("button", { name: "Deactivate alice-laptop" }).click();
  const confirm = page.getByRole("alertdialog", { name: "Deactivate “alice-laptop”?" });
  await confirm.getByRole("button", { name: "Deactivate" }).click();
  await expect(confirm).toBeHidden();
  await expect(page.getByRole("row", { name: /alice-laptop/ })).toContainText("Inactive");
  expect(await chat(plaintext)).toBe(401);
  await page.getByRole("button", { name: "Activate alice-laptop" }).click();
  await expect(page.getByRole("row", { name: /alice-laptop/ })).toContainText("Active");
  expect(await chat(plaintext)).toBe(200);
});

test("delete asks first", async () => {
  await page.getByRole("button", { name: "Delete bob-notebook" }).click();
  const confirm = page.getByRole("alertdialog", { name: "Delete “bob-notebook”?" });
  await expect(confirm).toContainText("cannot be undone");
  await shot("delete-key");
  await confirm.getByRole("button", { name: "Delete key" }).click();
  await expect(page.getByRole("row", { name: /bob-notebook/ })).toHaveCount(0);
});

test("rotate a key's secret: shown once, the old one works for the grace period, then not at all", async () => {
  await page.getByRole("link", { name: "alice-laptop" }).click();
  await expect(page.getByRole("heading", { name: /alice-laptop/, level: 1 })).toBeVisible();
  await expect(page.getByTestId("old-secret")).toHaveCount(0);
  const old = plaintext;

  await page.getByRole("button", { name: "Rotate secret" }).click();
  const dialog = page.getByRole("dialog", { name: "Rotate the secret of “alice-laptop”" });
  await expect(dialog.getByLabel("Old secret stops working")).toHaveValue("0");
  await dialog.getByLabel("Old secret stops working").selectOption({ label: "In 1 hour" });
  await dialog.getByRole("button", { name: "Rotate secret" }).click();

  const shown = page.getByRole("dialog", { name: "Secret rotated" });
  await expect(shown.getByText("It will not be shown again")).toBeVisible();
  const rotated = await shown.getByLabel("The new API key").inputValue();
  expect(rotated).toMatch(/^sk-[A-Za-z0-9_-]{20,}$/);
  expect(rotated).not.toBe(old);
  await expect(shown.getByTestId("rotated-old-secret")).toContainText("The old secret works until");
  await shown.getByRole("button", { name: "Copy key" }).click();
  expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(rotated);
  await shown.getByRole("button", { name: /I have stored the key/ }).click();
  await expect(shown).toBeHidden();
  expect(await page.content()).not.toContain(rotated);

  // Same key, new prefix; the old secret still works for the hour.
  await expect(page.getByTestId("key-prefix")).toHaveText(`${rotated.slice(0, 11)}…`);
  await expect(page.getByTestId("old-secret")).toContainText(/Old secret works until \d+ \w+ \d{4}, \d{2}:\d{2} UTC/);
  expect(await chat(rotated)).toBe(200);
  expect(await chat(old)).toBe(200);
  // Reloaded, the page reads the deadline from the key's history (the key object has none).
  await page.reload();
  await expect(page.getByTestId("old-secret")).toContainText(/Old secret works until \d+ \w+ \d{4}, \d{2}:\d{2} UTC/);

  // Rotated again at once: only the newest secret works.
  await page.getByRole("button", { name: "Rotate secret" }).click();
  await expect(page.getByRole("dialog", { name: /Rotate the secret/ }).getByLabel("Old secret stops working")).toHaveValue("0");
  await page.getByRole("dialog", { name: /Rotate the secret/ }).getByRole("button", { name: "Rotate secret" }).click();
  await expect(shown.getByTestId("rotated-old-secret")).toHaveText("The old secret no longer works.");
  plaintext = await shown.getByLabel("The new API key").inputValue();
  await shown.getByRole("button", { name: /I have stored the key/ }).click();
  await expect(page.getByTestId("old-secret")).toHaveCount(0);
  expect(await chat(plaintext)).toBe(200);
  expect(await chat(rotated)).toBe(401);
  expect(await chat(old)).toBe(401);
  // The newest rotation (at once) replaces the earlier one's grace period in the history too.
  await page.reload();
  await expect(page.getByRole("heading", { name: /alice-laptop/, level: 1 })).toBeVisible();
  await expect(page.getByRole("table", { name: "History of alice-laptop, newest first" })).toContainText("Secret rotated");
  await expect(page.getByTestId("old-secret")).toHaveCount(0);

  // The key's history, newest first, never with a secret.
  const history = page.getByRole("table", { name: "History of alice-laptop, newest first" });
  await expect(history.locator("tbody tr").first()).toContainText("Secret rotated");
  await expect(history.locator("tbody tr").first()).toContainText(`${plaintext.slice(0, 11)}…`);
  await expect(history.getByText("Key created")).toBeVisible();
  await expect(history.getByText("Limits changed").first()).toBeVisible();
  const html = await page.content();
  for (const secret of [old, rotated, plaintext]) expect(html).not.toContain(secret);
});

test("audit: every change newest first, what changed, who, and older pages on demand", async () => {
  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Audit" }).click();
  await expect(page.getByRole("heading", { name: "Audit", level: 1 })).toBeVisible();
  const table = page.getByRole("table", { name: "Audit trail, newest first" });
  const entries = table.locator("tbody tr");
  const entry = (action: string, key?: string) => {
    const rows = entries.filter({ hasText: action });
    return (key ? rows.filter({ hasText: key }) : rows).first();
  };
  // Newest first, as the API pages them; the newest is the second rotation.
  const latest = await admin<{ id: number; action: string }[]>("GET", "/api/audit?limit=50");
  await expect(entries).toHaveCount(latest.length);
  await expect(entries.first()).toHaveAttribute("data-audit-id", String(latest[0].id));
  await expect(entries.last()).toHaveAttribute("data-audit-id", String(latest[latest.length - 1].id));
  await expect(entry("Secret rotated")).toContainText("127.0.0.1");
  await expect(entry("Limits changed", "alice-laptop")).toContainText("50,000 → 80,000");
  await expect(entry("Key deactivated", "alice-laptop")).toContainText("active → inactive");
  await expect(entry("Key deleted")).toContainText("bob-notebook (deleted)");
  await expect(entry("Settings changed")).toContainText("qwen3:8b");
  await expect(entry("Key created", "research-team")).toContainText("Tokens per day");
  await expect(entry("Secret rotated").getByRole("link", { name: "alice-laptop" })).toHaveAttribute("href", /^\/keys\/\d+$/);
  expect(await page.content()).not.toContain(plaintext);
  await page.mouse.move(0, 0);
  await shot("audit");

  // More than a page: 50 more changes, then the next page is asked for with before=<last id>.
  const keys = await admin<{ id: number; name: string }[]>("GET", "/api/api-keys");
  const ci = keys.find((k) => k.name === "ci-pipeline");
  for (let i = 0; i < 50; i++) await admin("PATCH", `/api/api-keys/${ci?.id}/quota`, { daily_request_limit: 100 + i });
  const all = await admin<{ id: number }[]>("GET", "/api/audit?limit=500");
  expect(all.length).toBeGreaterThan(50);
  expect(all.length).toBeLessThan(100);
  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(entries.first()).toContainText("148 → 149");
  await expect(entries).toHaveCount(50);
  const older = page.waitForRequest((r) => r.url().includes("/api/audit?") && r.url().includes("before="));
  await page.getByRole("button", { name: "Load more" }).click();
  expect(new URL((await older).url()).searchParams.get("before")).toBe(String(all[49].id));
  await expect(entries).toHaveCount(all.length);
  await expect(page.getByText(`All ${all.length} entries shown.`)).toBeVisible();
  await expect(page.getByRole("button", { name: "Load more" })).toHaveCount(0);
  await expect(entries.last()).toContainText("Key created");
  await expect(entries.last()).toContainText("alice-laptop");

  await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "API keys" }).click();
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
});

test("narrow screens get cards instead of a wide table", async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.reload();
  await expect(page.getByRole("row", { name: /research-team/ })).toBeVisible();
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await shot("keys-narrow");
  await page.setViewportSize({ width: 1280, height: 800 });
});

test("sign out clears the password; an unreachable admin API says so", async () => {
  await page.getByRole("button", { name: "Sign out" }).click();
  await expect(page.getByRole("heading", { name: "Sign in" })).toBeVisible();
  expect(await page.evaluate(() => sessionStorage.length + localStorage.length)).toBe(0);

  await page.getByLabel("Admin password").fill(stack.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "API keys", level: 1 })).toBeVisible();
  await stack.stop();
  await page.getByRole("button", { name: "Refresh" }).click();
  await expect(page.getByRole("alert")).toContainText("The admin API is unreachable");
});
