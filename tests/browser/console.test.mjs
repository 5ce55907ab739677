// Browser test of the web console: real headless Chromium (Debian's /usr/bin/chromium) driven by
// playwright-core, against a running `webhooks-local serve` (scripts/browser-test.sh sets it up).
// Env: CONSOLE_URL (http://127.0.0.1:PORT), CONSOLE_API_KEY, SCREENSHOT_DIR, CHROMIUM.
// A receiver on 127.0.0.1 answers 500 until the test switches it to 200.
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';

const BASE = process.env.CONSOLE_URL;
const KEY = process.env.CONSOLE_API_KEY;
const PUBLISH_KEY = process.env.CONSOLE_PUBLISH_KEY; // the platform's: events:publish only
const SHOTS = process.env.SCREENSHOT_DIR || 'docs/console';
if (!BASE || !KEY) throw new Error('set CONSOLE_URL and CONSOLE_API_KEY (scripts/browser-test.sh does)');
mkdirSync(SHOTS, { recursive: true });
const run = Date.now().toString(36);

// ---------------------------------------------------------------- receiver
let answer = 500;
const received = [];
const receiver = http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    received.push({ headers: req.headers, body, answered: answer });
    res.writeHead(answer, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ received: true, answer }));
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const HOOK = `http://127.0.0.1:${receiver.address().port}/hook`;

/** Publishes an event as an upstream service would over HTTP (with the platform's key). */
async function publish(eventId, eventType, data) {
  const res = await fetch(`${BASE}/v1/events`, { method: 'POST', headers: { authorization: `Bearer ${PUBLISH_KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ event_id: eventId, event_type: eventType, data }) });
  assert.equal(res.status, 202, `POST /v1/events answered ${res.status}: ${await res.text()}`);
}

// ---------------------------------------------------------------- browser
const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 800 },
  locale: 'en-US',
  timezoneId: 'UTC',
});
await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(15000);
const cspViolations = [];
const pageErrors = [];
const requestUrls = [];
page.on('console', (m) => { if (/Content.Security.Policy|Refused to/i.test(m.text())) cspViolations.push(m.text()); });
page.on('pageerror', (e) => pageErrors.push(String(e)));
page.on('request', (r) => requestUrls.push(r.url()));

const main = page.locator('main');
const h1 = main.locator('h1');
const shot = (name, opts = {}) => page.screenshot({ path: join(SHOTS, name), ...opts });
const focusedText = () => page.evaluate(() => document.activeElement?.textContent || '');
/** GET /v1{path} with the test's key, as JSON (what the API holds, behind the page's back). */
const getJson = async (path) => (await fetch(`${BASE}/v1${path}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
async function until(what, check, seconds = 60) {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await page.waitForTimeout(1000);
  }
}

// ---------------------------------------------------------------- tests
// The tests tell one story (sign in, create, fail, resend …): once one fails, the later steps of
// the story are reported as failed without running (each would only wait for its timeout).
const results = [];
let broken = null;
async function test(name, fn, { standalone = false } = {}) {
  const t0 = Date.now();
  if (broken && !standalone) {
    results.push(false);
    console.log(`not ok ${results.length} - ${name}\n    not run: test ${broken} failed`);
    return;
  }
  try {
    await fn();
    results.push(true);
    console.log(`ok ${results.length} - ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push(false);
    broken ||= results.length;
    console.log(`not ok ${results.length} - ${name}\n    ${String(e.stack || e).split('\n').slice(0, 6).join('\n    ')}`);
    await page.screenshot({ path: join(tmpdir(), `console-failure-${results.length}.png`) }).catch(() => {});
  }
}

let subId = '';

await test('sign-in refuses a malformed and an unknown key next to the field, then accepts the real one', async () => {
  await page.goto(`${BASE}/console/#/subscriptions`);
  await h1.filter({ hasText: 'Sign in' }).waitFor();
  assert.equal(await page.title(), 'Sign in · Webhooks console');
  await shot('signin.png');
  const key = page.getByLabel('API key');
  await key.fill('not-a-key');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await main.getByText('An API key is whk_ followed by 48 hexadecimal characters.').waitFor();
  assert.equal(await key.getAttribute('aria-invalid'), 'true');
  assert.ok(await key.evaluate((el) => el === document.activeElement), 'focus moves to the field at fault');
  await key.fill(`whk_${'0'.repeat(48)}`);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await main.getByText('This API key is not valid (or was revoked).').waitFor();
  await key.fill(KEY);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await h1.filter({ hasText: 'Subscriptions' }).waitFor();
  await main.getByText('No subscriptions yet.').waitFor();
  assert.equal(await focusedText(), 'Subscriptions', 'focus moves to the new heading');
});

await test('create: an API error is shown in words next to its field; the secret is shown once with a copy button', async () => {
  await main.getByRole('link', { name: 'New subscription' }).click();
  await h1.filter({ hasText: 'New subscription' }).waitFor();
  const url = page.getByLabel('Endpoint URL');
  await url.fill('ftp://example.com/hooks');
  await page.getByRole('button', { name: 'Create subscription' }).click();
  const urlError = main.locator('[data-field="url"] .field-error');
  await urlError.waitFor();
  assert.match(await urlError.textContent(), /\w{4,}/);
  assert.equal(await url.getAttribute('aria-invalid'), 'true');

  await url.fill(HOOK);
  await page.getByLabel('Name (optional)').fill('Orders receiver');
  await page.getByLabel('All events (*)').uncheck();
  await page.getByRole('button', { name: 'Create subscription' }).click();
  await main.getByText('Pick at least one event type (or All events).').waitFor();
  await page.getByLabel('All project.*').check();
  await page.getByLabel('media.added', { exact: true }).check();
  await page.getByRole('button', { name: 'Add header' }).click();
  await page.getByLabel('Custom header name').fill('X-Team');
  await page.getByLabel('Custom header value').fill('payments');
  await page.getByLabel('HTTP Basic').check();
  await page.getByLabel('Username').fill('hooks');
  await page.getByLabel('Password').fill('s3cret-pass');
  const unlabelled = await main.locator('input, select, textarea').evaluateAll((els) => els.filter((e) => !e.labels?.length && !e.getAttribute('aria-label')).length);
  assert.equal(unlabelled, 0, 'every form control has a label');
  await shot('subscription-form.png', { fullPage: true });

  await page.getByRole('button', { name: 'Create subscription' }).click();
  await h1.filter({ hasText: 'Subscription created' }).waitFor();
  const secret = await main.locator('code.secret').textContent();
  assert.match(secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
  await main.getByRole('button', { name: 'Copy secret' }).click();
  await main.getByRole('button', { name: 'Copied ✓' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await shot('create-secret.png');
  await main.getByRole('link', { name: 'Go to its deliveries' }).click();
  await h1.filter({ hasText: 'Deliveries of Orders receiver' }).waitFor();
  subId = decodeURIComponent(page.url().match(/#\/subscriptions\/([^/]+)\/deliveries/)[1]);
  assert.ok(!(await main.textContent()).includes(secret), 'the secret is not shown again');
});

await test('the list shows URL, name, status, failure count and last delivered', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Subscriptions' }).click();
  const row = main.locator('tbody tr', { hasText: 'Orders receiver' });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.ok(cells[0].includes(HOOK), cells[0]);
  assert.equal(cells[1], 'Enabled');
  assert.equal(cells[2], '0');
  assert.equal(cells[3], 'never');
  // A second, paused subscription (made over the API) shows as Disabled.
  const res = await fetch(`${BASE}/v1/subscriptions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: 'https://staging.example.com/hooks', name: 'Staging (paused)', enabled: false }) });
  assert.equal(res.status, 201);
  await page.reload();
  await main.locator('tbody tr', { hasText: 'Staging (paused)' }).getByText('Disabled').waitFor();
});

await test('"Send test event" reports the receiver\'s 500; the delivery carried the custom header and Basic auth', async () => {
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/deliveries`);
  await main.getByRole('button', { name: 'Send test event' }).click();
  await main.getByRole('status').filter({ hasText: 'Test event failed: HTTP 500' }).waitFor();
  const got = received.at(-1);
  assert.equal(got.headers['x-team'], 'payments');
  assert.equal(got.headers.authorization, `Basic ${Buffer.from('hooks:s3cret-pass').toString('base64')}`);
  assert.equal(got.headers['x-webhook-event'], 'webhook.test');
  await main.locator('tbody tr', { hasText: 'webhook.test' }).waitFor();
});

await test('a failing delivery shows ✗ in the list and its 500 in the Responses tab (tabs work with the keyboard)', async () => {
  await publish(`evt-fail-${run}`, 'project.created', { project_id: 'prj_1', name: 'Kitchen remodel', created_by: 'usr_9' });
  await publish(`evt-media-${run}`, 'media.added', { media_id: 'med_1' });
  const row = main.locator('tbody tr', { hasText: `evt-fail-${run}` });
  await until('the delivery to fail after its 2 attempts', async () => {
    await main.getByRole('button', { name: 'Apply filters' }).click();
    await main.getByRole('button', { name: 'Apply filters' }).waitFor();
    return (await row.count()) === 1 && (await row.textContent()).includes('Failed') && (await main.locator('tbody tr', { hasText: 'media.added' }).textContent().catch(() => '')).includes('Failed');
  });
  assert.equal(await row.locator('td[data-label="Attempts"]').textContent(), '2');
  await row.getByRole('link', { name: `evt-fail-${run}` }).click();
  await h1.filter({ hasText: `Delivery of evt-fail-${run}` }).waitFor();
  const requestPanel = main.getByRole('tabpanel', { name: 'Request' });
  await requestPanel.getByText('"Kitchen remodel"').waitFor();
  assert.ok((await requestPanel.textContent()).includes('x-team'));
  await main.getByRole('tab', { name: 'Request' }).focus();
  await page.keyboard.press('ArrowRight');
  const responsesTab = main.getByRole('tab', { name: /Responses/ });
  assert.equal(await responsesTab.getAttribute('aria-selected'), 'true');
  assert.ok(await responsesTab.evaluate((el) => el === document.activeElement));
  const responses = main.getByRole('tabpanel', { name: /Responses/ });
  await responses.getByRole('heading', { name: 'Attempt 2: HTTP 500' }).waitFor();
  await responses.getByRole('heading', { name: 'Attempt 1: HTTP 500' }).waitFor();
  assert.ok((await responses.textContent()).includes('"answer": 500'), 'the response body is shown');
  assert.ok(await requestPanel.isHidden());
  await main.getByRole('button', { name: 'Resend' }).waitFor();
});

await test('the list shows the failures in a row', async () => {
  const detail = page.url();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Subscriptions' }).click();
  const row = main.locator('tbody tr', { hasText: 'Orders receiver' });
  await row.waitFor();
  const cells = await row.locator('td').allTextContents();
  assert.ok(Number(cells[2]) >= 2, `failures: ${cells[2]}`);
  await shot('subscriptions.png');
  await page.goto(detail);
  await main.getByRole('button', { name: 'Resend' }).waitFor();
});

await test('after the receiver recovers, Resend shows a new attempt answered 200', async () => {
  answer = 200;
  await main.getByRole('button', { name: 'Resend' }).click();
  const responses = main.getByRole('tabpanel', { name: /Responses/ });
  await responses.getByRole('heading', { name: 'Attempt 3: HTTP 200' }).waitFor({ timeout: 60000 });
  await main.locator('.summary').getByText('Delivered').waitFor();
  assert.equal(await main.getByRole('button', { name: 'Resend' }).count(), 0, 'no Resend on a delivered delivery');
  assert.ok((await focusedText()).includes('Attempt 3: HTTP 200'), 'focus moves to the new attempt');
  await main.getByRole('status').filter({ hasText: 'the delivery is delivered' }).waitFor();
  await shot('delivery-responses.png', { fullPage: true });
});

await test('deliveries: filters by status and type, and "Load more" follows next_cursor', async () => {
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/deliveries?limit=2`);
  await h1.filter({ hasText: 'Deliveries of' }).waitFor();
  const rows = main.locator('tbody tr');
  assert.equal(await rows.count(), 2);
  await main.getByRole('button', { name: 'Load more' }).click();
  await until('the next page', async () => (await rows.count()) === 3, 15);
  assert.equal(await main.getByRole('button', { name: 'Load more' }).isVisible(), false, 'the last page has no next_cursor');
  await page.getByLabel('Per page').selectOption('20');
  await page.getByLabel('Result').selectOption('failed');
  await main.getByRole('button', { name: 'Apply filters' }).click();
  await until('failed only', async () => (await rows.count()) === 2, 15);
  assert.ok(page.url().includes('status=failed'), 'the filter is kept in the URL');
  for (const t of await rows.allTextContents()) assert.ok(t.includes('Failed'), t);
  await page.getByLabel('Event type').selectOption('media.added');
  await main.getByRole('button', { name: 'Apply filters' }).click();
  await until('media.added only', async () => (await rows.count()) === 1 && (await rows.first().textContent()).includes(`evt-media-${run}`), 15);
  await page.getByLabel('Result').selectOption('');
  await page.getByLabel('Event type').selectOption('');
  await main.getByRole('button', { name: 'Apply filters' }).click();
  await until('all three', async () => (await rows.count()) === 3, 15);
  await shot('deliveries.png', { fullPage: true });
});

await test('"Recover failures since…" checks its field and queues the failed deliveries again', async () => {
  await main.getByText('Recover failures since…').click();
  const since = page.getByLabel('Since (your local time)');
  await since.fill('');
  await main.getByRole('button', { name: 'Recover', exact: true }).click();
  await main.getByText('Enter a date and time.').waitFor();
  assert.equal(await since.getAttribute('aria-invalid'), 'true');
  await since.fill('2020-01-01T00:00');
  await main.getByRole('button', { name: 'Recover', exact: true }).click();
  await main.getByRole('status').filter({ hasText: /Queued 2 failed deliveries again/ }).waitFor();
  const rows = main.locator('tbody tr');
  await until('the recovered deliveries to succeed', async () => {
    await main.getByRole('button', { name: 'Apply filters' }).click();
    await main.getByRole('button', { name: 'Apply filters' }).waitFor();
    return (await rows.count()) === 3 && (await rows.allTextContents()).every((t) => t.includes('Delivered'));
  });
});

await test('the deliveries page charts the subscription\'s health, bar for bar as the stats route counts it', async () => {
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/deliveries`);
  for (const [button, window, bars] of [['Last 24 hours', '24h', 24], ['Last 7 days', '7d', 7]]) {
    // Deliveries of the story may still be settling: redraw until the chart and the route agree
    // on a moment when nothing changed between the two reads.
    let stats;
    let drawn;
    await until(`the ${window} chart to match the stats route`, async () => {
      await main.getByRole('button', { name: button }).click();
      await until(`${bars} bars`, async () => (await main.locator('svg.deliveries-chart g.bar').count()) === bars && !(await main.locator('.health-body[aria-busy]').count()), 10);
      drawn = await main.locator('svg.deliveries-chart g.bar').evaluateAll((gs) => gs.map((g) => ({ start: g.dataset.start, delivered: +g.dataset.delivered, failed: +g.dataset.failed, pending: +g.dataset.pending })));
      stats = await getJson(`/subscriptions/${subId}/stats?window=${window}`);
      return JSON.stringify(drawn) === JSON.stringify(stats.buckets.map((b) => ({ start: b.start, delivered: b.delivered, failed: b.failed, pending: b.pending })));
    }, 30);
    assert.ok(stats.totals.deliveries > 0 && stats.totals.failed_attempts > 0, `the story so far has failed attempts: ${JSON.stringify(stats.totals)}`);
    const summary = main.locator('.health-summary');
    assert.equal(+(await summary.getAttribute('data-deliveries')), stats.totals.deliveries);
    assert.match(await summary.textContent(), new RegExp(`^${stats.totals.deliveries} deliveries · `));
    // Each drawn bar is as tall as its count: the stacked rects' heights are in proportion.
    const heights = await main.locator('svg.deliveries-chart g.bar').evaluateAll((gs) => gs.map((g) => [...g.querySelectorAll('rect')].reduce((n, r) => n + +r.getAttribute('height'), 0)));
    const max = Math.max(...stats.buckets.map((b) => b.deliveries));
    stats.buckets.forEach((b, i) => assert.ok(Math.abs(heights[i] - (b.deliveries / max) * 130) < 1, `bar ${i}: ${heights[i]} for ${b.deliveries} of ${max}`));
    if (window === '24h') await shot('health.png', { clip: await main.locator('.card.health').boundingBox() });
  }
});

await test('the catalogue lists every event type with an example payload, and filters', async () => {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Event types' }).click();
  await h1.filter({ hasText: 'Event types' }).waitFor();
  const cards = main.locator('article');
  assert.ok((await cards.count()) >= 10);
  await cards.filter({ hasText: 'project.created' }).getByText('"Kitchen remodel"').waitFor();
  await shot('catalogue.png');
  await page.getByLabel('Filter').fill('visit');
  const visible = await cards.evaluateAll((els) => els.filter((e) => !e.hidden).map((e) => e.dataset.name));
  assert.ok(visible.length >= 2 && visible.every((n) => n.includes('visit')), visible.join());
}, { standalone: true });

await test('phone width: no horizontal scrolling; tables become labelled cards', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/deliveries`);
  await main.locator('tbody tr').first().waitFor();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scroll');
  const label = await main.locator('tbody td').first().evaluate((td) => getComputedStyle(td, '::before').content);
  assert.equal(label, '"Event"');
  await shot('phone-deliveries.png', { fullPage: true });
  await main.locator('tbody tr a').first().click();
  await main.getByRole('tab', { name: /Responses/ }).click();
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no horizontal scroll on the detail');
  await page.setViewportSize({ width: 1280, height: 800 });
});

await test('keyboard: the skip link focuses the content; the edit page never shows secrets', async () => {
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/edit`);
  await h1.filter({ hasText: 'Edit Orders receiver' }).waitFor();
  const text = await main.textContent();
  assert.ok(!text.includes('payments') && !text.includes('s3cret-pass'));
  assert.equal(await page.getByLabel('Password').inputValue(), '');
  await page.getByLabel('Password').fill('');
  await page.getByLabel('Username').fill('hooks2');
  await page.getByRole('button', { name: 'Save changes' }).click();
  await main.locator('[data-field="auth.password"] .field-error').getByText('enter it again').waitFor();
  await page.mouse.click(3, 3); // the top edge of the page: Tab starts from there
  await page.keyboard.press('Tab');
  assert.equal(await focusedText(), 'Skip to content');
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'app');
});

await test('edit page: "Rotate secret" shows the new secret once; delete and restore', async () => {
  page.once('dialog', (d) => d.accept());
  await main.getByRole('button', { name: 'Rotate secret' }).click();
  await main.getByRole('heading', { name: 'New signing secret' }).waitFor();
  assert.match(await main.locator('code.secret').textContent(), /^whsec_/);
  assert.ok((await focusedText()).includes('New signing secret'), 'focus moves to the new secret');
  await main.getByText('The previous secret also signs deliveries until').waitFor();
  await page.goto(`${BASE}/console/#/subscriptions`);
  await main.locator('tbody tr', { hasText: 'Staging (paused)' }).getByRole('link', { name: /Edit/ }).click();
  page.once('dialog', (d) => d.accept());
  await main.getByRole('button', { name: 'Delete subscription' }).click();
  await main.getByText('Subscription deleted.').waitFor();
  await main.locator('tbody tr', { hasText: 'Staging (paused)' }).getByText('Deleted').waitFor();
  await main.locator('tbody tr', { hasText: 'Staging (paused)' }).getByRole('link', { name: /Edit/ }).click();
  await main.getByRole('button', { name: 'Restore subscription' }).click();
  await main.getByText('Subscription restored.').waitFor();
  await main.locator('tbody tr', { hasText: 'Staging (paused)' }).getByText('Disabled').waitFor();
});

await test('edit page: saving sends only the changed fields, and says so when someone else changed the subscription meanwhile', async () => {
  await page.goto(`${BASE}/console/#/subscriptions`);
  await main.locator('tbody tr', { hasText: 'Staging (paused)' }).getByRole('link', { name: /Edit/ }).click();
  const name = main.getByLabel('Name (optional)');
  await name.waitFor();
  // Meanwhile someone renames it through the API.
  const list = await (await fetch(`${BASE}/v1/subscriptions`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  const id = list.data.find((s) => s.name === 'Staging (paused)').id;
  const res = await fetch(`${BASE}/v1/subscriptions/${id}`, { method: 'PATCH', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify({ description: 'changed elsewhere' }) });
  assert.equal(res.status, 200);
  await name.fill('Staging (renamed here)');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await main.getByRole('alert').filter({ hasText: 'Someone else changed this subscription' }).waitFor();
  const now = await (await fetch(`${BASE}/v1/subscriptions/${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  assert.equal(now.name, 'Staging (paused)', 'the stale form did not overwrite');
  assert.equal(now.description, 'changed elsewhere');
  // Reloaded, the same edit saves, and only the name changes.
  await main.getByRole('button', { name: 'Reload it' }).click();
  await main.getByLabel('Description (optional)').filter({ hasText: '' }).waitFor();
  await until('the reloaded form', async () => (await main.getByLabel('Description (optional)').inputValue()) === 'changed elsewhere', 10);
  await main.getByLabel('Name (optional)').fill('Staging (paused)');
  await main.getByLabel('Description (optional)').fill('changed here');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await main.getByText('Changes saved.').waitFor();
  const saved = await (await fetch(`${BASE}/v1/subscriptions/${id}`, { headers: { authorization: `Bearer ${KEY}` } })).json();
  assert.equal(saved.description, 'changed here');
  assert.equal(saved.enabled, false, 'the unchanged enabled flag was not sent back');
});

await test('edit page: the payload filter is checked next to its field, tried on a sample event, saved and removed; thin payloads on and off', async () => {
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/edit`);
  const filter = main.getByLabel('Filter (JSON)');
  await filter.waitFor();
  assert.equal(await filter.inputValue(), '', 'no filter yet');
  const error = main.locator('[data-field="filter"] > .field-error');
  // Not JSON: refused in the page. An unknown operator: refused by the API, named in place.
  await filter.fill('{"data.project.region": ');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await until('the JSON error', async () => /not valid JSON/.test(await error.textContent()), 10);
  await filter.fill('{"data.project.region": {"$regex": "^e"}}');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await until('the API\'s error', async () => /data\.project\.region\.\$regex: is not an operator/.test(await error.textContent()), 10);
  assert.equal(await main.locator('fieldset[data-field="filter"]').getAttribute('aria-invalid'), 'true');
  assert.ok(await filter.evaluate((el) => el === document.activeElement), 'focus moves to the filter');
  // Tried before saving: a sample that passes, then one that does not, with the reason.
  await filter.fill('{"data.project.region": {"$in": ["eu", "uk"]}, "data.project.budget": {"$gte": 1000}}');
  await main.getByLabel('Sample event type').fill('project.created');
  const data = main.getByLabel('Sample data (JSON)');
  const verdict = main.locator('.filter-verdict');
  await data.fill('{"project": {"region": "eu", "budget": 1500}}');
  await main.getByRole('button', { name: 'Test filter' }).click();
  await until('a delivered verdict', async () => /^Delivered \(decided by filter\)/.test(await verdict.textContent()), 10);
  await data.fill('{"project": {"region": "eu", "budget": 500}}');
  await main.getByRole('button', { name: 'Test filter' }).click();
  await until('a refused verdict', async () => /^Not delivered \(decided by filter\): data\.project\.budget is 500/.test(await verdict.textContent()), 10);
  await shot('subscription-filter.png', { fullPage: true });
  const before = await getJson(`/subscriptions/${subId}`);
  assert.equal(before.filter, null, 'testing saved nothing');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await main.getByText('Changes saved.').waitFor();
  const saved = await getJson(`/subscriptions/${subId}`);
  assert.deepEqual(saved.filter, { 'data.project.region': { $in: ['eu', 'uk'] }, 'data.project.budget': { $gte: 1000 } });
  assert.deepEqual(saved.events, before.events, 'only the filter was sent');
  // Shown again on the edit page; emptied, it is removed.
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/edit`);
  await until('the saved filter in the form', async () => JSON.parse((await main.getByLabel('Filter (JSON)').inputValue()) || 'null')?.['data.project.budget']?.$gte === 1000, 10);
  await main.getByLabel('Filter (JSON)').fill('');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await main.getByText('Changes saved.').waitFor();
  const cleared = await getJson(`/subscriptions/${subId}`);
  assert.equal(cleared.filter, null);
  assert.equal(cleared.payload, 'full');
  // Thin payloads, switched on and off again.
  for (const want of ['thin', 'full']) {
    await page.goto(`${BASE}/console/#/subscriptions/${subId}/edit`);
    const box = main.getByLabel('Thin payloads');
    await box.waitFor();
    assert.equal(await box.isChecked(), want === 'full');
    await box.setChecked(want === 'thin');
    await main.getByRole('button', { name: 'Save changes' }).click();
    await main.getByText('Changes saved.').waitFor();
    const now = await getJson(`/subscriptions/${subId}`);
    assert.equal(now.payload, want);
  }
});

await test('edit page: a retry policy outside the service\'s bounds is refused next to its field; within them it is saved', async () => {
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/edit`);
  const waits = main.getByLabel('Retry waits (seconds)');
  await waits.waitFor();
  assert.equal(await waits.inputValue(), '', "the service's policy");
  // This deployment retries once, after 1 s: two waits are more than it allows.
  await waits.fill('1, 1');
  await main.getByRole('button', { name: 'Save changes' }).click();
  const error = main.locator('[data-field="retry.schedule"] .field-error');
  await until('the schedule error', async () => /at most 1 waits/.test(await error.textContent()), 10);
  assert.equal(await waits.getAttribute('aria-invalid'), 'true');
  await waits.fill('1');
  await main.getByLabel('Timeout (ms)').fill('2000');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await main.getByText('Changes saved.').waitFor();
  const saved = await getJson(`/subscriptions/${subId}`);
  assert.deepEqual(saved.retry, { schedule: [1], timeout_ms: 2000 });
  await page.goto(`${BASE}/console/#/subscriptions/${subId}/edit`);
  await until('the saved policy in the form', async () => (await main.getByLabel('Retry waits (seconds)').inputValue()) === '1', 10);
  await main.getByLabel('Retry waits (seconds)').fill('');
  await main.getByLabel('Timeout (ms)').fill('');
  await main.getByRole('button', { name: 'Save changes' }).click();
  await main.getByText('Changes saved.').waitFor();
  const cleared = await getJson(`/subscriptions/${subId}`);
  assert.equal(cleared.retry, null);
});

await test('create: the TrustPager signature profile, a TRUST+ event header and OAuth 2.0 auth are saved; the client secret never comes back', async () => {
  const clientSecret = `oauth-secret-${run}`;
  await page.goto(`${BASE}/console/#/subscriptions/new`);
  await h1.filter({ hasText: 'New subscription' }).waitFor();
  await page.getByLabel('Endpoint URL').fill(HOOK);
  await page.getByLabel('Name (optional)').fill('TrustPager receiver');
  // One event type nothing publishes from here on: no delivery fetches a token from auth.example.com.
  await page.getByLabel('All events (*)').uncheck();
  await page.getByLabel('media.added', { exact: true }).check();
  const header = page.getByLabel('Signature header name');
  assert.ok(await header.isHidden(), 'the standard profile has no header name');
  await page.getByLabel('Signature profile').selectOption('hex');
  await header.fill('X-TrustPager-Signature');
  await page.getByLabel('Event header name').fill('X-TrustPlus-Event');
  await page.getByLabel('OAuth 2.0 client credentials').check();
  await page.getByLabel('Token URL').fill('https://auth.example.com/token');
  await page.getByLabel('Client ID').fill('console-client');
  await page.getByLabel('Client secret').fill(clientSecret);
  await shot('subscription-signature.png', { fullPage: true });
  const response = page.waitForResponse((r) => r.url().endsWith('/v1/subscriptions') && r.request().method() === 'POST');
  await page.getByRole('button', { name: 'Create subscription' }).click();
  const created = await (await response).text();
  await h1.filter({ hasText: 'Subscription created' }).waitFor();
  assert.ok(!created.includes(clientSecret), 'the create response has no client secret');
  assert.match(await main.locator('code.secret').textContent(), /^whsec_/, 'v1: the signing secret is shown once');
  await main.getByRole('link', { name: 'Go to its deliveries' }).click();
  await h1.filter({ hasText: 'Deliveries of TrustPager receiver' }).waitFor();
  const id = decodeURIComponent(page.url().match(/#\/subscriptions\/([^/]+)\/deliveries/)[1]);
  const saved = await getJson(`/subscriptions/${id}`);
  assert.deepEqual(saved.signature, { scheme: 'v1', profile: 'hex', header: 'x-trustpager-signature', event_header: 'x-trustplus-event', public_key: null, previous_public_key: null });
  assert.deepEqual(saved.auth, { type: 'oauth2', token_url: 'https://auth.example.com/token', client_id: 'console-client', scope: null, audience: null, client_auth: 'basic' });
  assert.equal(saved.tls, null);
  const list = await getJson('/subscriptions');
  assert.ok(!JSON.stringify([saved, list]).includes(clientSecret), 'GET never returns the client secret');
  const summary = main.locator('.summary');
  await summary.getByText('bare hex in a header (TrustPager)').waitFor();
  assert.ok((await summary.textContent()).includes('x-trustpager-signature'));
  assert.ok((await summary.textContent()).includes('x-trustplus-event'));
  assert.ok(!(await page.content()).includes(clientSecret), 'the page never shows the client secret');
}, { standalone: true });

await test('create: a v1a (ed25519) subscription shows its whpk_ public key instead of a secret', async () => {
  await page.goto(`${BASE}/console/#/subscriptions/new`);
  await h1.filter({ hasText: 'New subscription' }).waitFor();
  await page.getByLabel('Endpoint URL').fill(HOOK);
  await page.getByLabel('Name (optional)').fill('Ed25519 receiver');
  await page.getByLabel('ed25519').check();
  assert.ok(await page.getByLabel('Signing secret (optional)').isHidden(), 'v1a has no secret of your own');
  assert.ok(await page.getByLabel('Signature profile').isDisabled(), 'v1a: the standard profile only');
  await page.getByRole('button', { name: 'Create subscription' }).click();
  await h1.filter({ hasText: 'Subscription created' }).waitFor();
  const key = await main.locator('code.public-key').textContent();
  assert.match(key, /^whpk_[A-Za-z0-9+/]{43}=$/, 'whpk_ + base64 of 32 bytes');
  assert.equal(await main.locator('code.secret').count(), 0, 'no secret');
  await main.getByRole('button', { name: 'Copy public key' }).click();
  await main.getByRole('button', { name: 'Copied ✓' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), key);
  await shot('create-public-key.png');
  await main.getByRole('link', { name: 'Go to its deliveries' }).click();
  await h1.filter({ hasText: 'Deliveries of Ed25519 receiver' }).waitFor();
  const id = decodeURIComponent(page.url().match(/#\/subscriptions\/([^/]+)\/deliveries/)[1]);
  const saved = await getJson(`/subscriptions/${id}`);
  assert.equal(saved.signature.scheme, 'v1a');
  assert.equal(saved.signature.profile, 'standard');
  assert.equal(saved.signature.public_key, key);
  await main.locator('.summary code.public-key').filter({ hasText: key }).waitFor();
}, { standalone: true });

await test('the API key never appears in a URL, local storage or the page; no CSP violation or script error; sign-out forgets it', async () => {
  assert.ok(requestUrls.length > 20);
  assert.deepEqual(requestUrls.filter((u) => u.includes(KEY)), []);
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.ok(!(await page.content()).includes(KEY));
  assert.equal(await page.evaluate(() => Object.values(sessionStorage).filter((v) => v.startsWith('whk_')).length), 1);
  assert.deepEqual(cspViolations, []);
  assert.deepEqual(pageErrors, []);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await h1.filter({ hasText: 'Sign in' }).waitFor();
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
}, { standalone: true });

await context.close();
receiver.close();
rmSync(profile, { recursive: true, force: true });
const failed = results.filter((ok) => !ok).length;
console.log(`browser: ${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
