// The web page end to end, in headless Chromium. Run by .ci/web.sh, which
// starts a demo server (alice/wonderland, admin/secret) at E2E_BASE with
// 15-second access tokens. Fails on any console or page error except the
// ones a step announces (e.g. the 409 it provokes).

import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(path.resolve(process.env.E2E_MODULES ?? 'target/web-e2e', 'package.json'));
const { chromium } = require('playwright-core');

const base = process.env.E2E_BASE ?? 'http://127.0.0.1:8000';
const artifacts = process.env.E2E_ARTIFACTS ?? 'target/artifacts';
mkdirSync(artifacts, { recursive: true });

const problems = [];
let allowed = [];

function watch(page, who) {
  page.on('console', (message) => {
    if (message.type() === 'error' && !allowed.some((re) => re.test(message.text()))) {
      problems.push(`${who}: console error: ${message.text()}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`${who}: page error: ${error.message}`));
}

/** Runs `step` while the browser may log these expected errors. */
async function allowing(patterns, step) {
  allowed = patterns;
  try {
    await step();
  } finally {
    allowed = [];
  }
}

function check(condition, what) {
  if (!condition) throw new Error(`check failed: ${what}`);
  console.log(`ok - ${what}`);
}

/** Waits until `probe()` is true (it may be async). */
async function until(probe, what, timeout = 10_000) {
  const end = Date.now() + timeout;
  while (!(await probe())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  console.log(`ok - ${what}`);
}

const visible = (locator) => locator.waitFor({ state: 'visible', timeout: 10_000 });
const todo = (page, title) => page.locator('li.todo', { has: page.locator('.title', { hasText: title }) });
const titles = (page) => page.locator('li.todo .title').allTextContents();
const notice = (page) => page.locator('#notice');

async function signIn(page, username, password) {
  await page.locator('#in-username').fill(username);
  await page.locator('#in-password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await visible(page.getByRole('heading', { name: 'My todos' }));
}

async function addTodo(page, title, { description, visibility, clearance } = {}) {
  const form = page.getByRole('form', { name: 'New todo' });
  await form.getByLabel('Title').fill(title);
  if (description) await form.getByLabel('Description').fill(description);
  if (visibility) await form.getByLabel('Visible to').selectOption(visibility);
  if (clearance !== undefined) await form.getByLabel('Clearance needed').selectOption(String(clearance));
  await form.getByRole('button', { name: 'Add todo' }).click();
  await visible(todo(page, title));
}

async function filter(page, name, expected) {
  await page.getByRole('group', { name: 'Show' }).getByRole('button', { name, exact: true }).click();
  await until(async () => JSON.stringify(await titles(page)) === JSON.stringify(expected),
    `filter ${name} shows ${JSON.stringify(expected)}`);
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  // A new user: sign up (which signs in), sign out, sign in again.
  const user = await browser.newContext({ viewport: { width: 960, height: 760 } });
  const page = await user.newPage();
  watch(page, 'user');
  const username = `erin_${Date.now().toString(36)}`;
  const password = 'correct horse battery staple';
  await page.goto(base);
  await visible(page.getByRole('heading', { name: 'Sign in' }));
  await page.locator('#up-username').fill(username);
  await page.getByLabel('Name', { exact: true }).fill('Erin Example');
  await page.locator('#up-password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await visible(page.getByRole('heading', { name: 'My todos' }));
  check((await notice(page).textContent()).includes('Welcome'), 'signing up signs in');

  const spent = await page.evaluate(() => sessionStorage.getItem('todo-api.refresh_token'));
  await page.getByRole('button', { name: 'Sign out' }).click();
  await visible(page.getByRole('heading', { name: 'Sign in' }));
  check(await page.evaluate(() => sessionStorage.length === 0), 'signing out forgets the refresh token');
  const reuse = await page.request.post(`${base}/auth/token`,
    { form: { grant_type: 'refresh_token', refresh_token: spent } });
  check(reuse.status() === 401, 'signing out revokes the refresh token on the server');

  await signIn(page, username, password);
  check((await user.cookies()).length === 0, 'no cookies');
  const stored = await page.evaluate(() => [Object.keys(sessionStorage), localStorage.length]);
  check(JSON.stringify(stored) === '[["todo-api.refresh_token"],0]', 'only the refresh token is stored, in sessionStorage');
  check(!page.url().includes('token'), 'no token in the URL');

  // Three todos: complete one, filter, edit one, delete one.
  await addTodo(page, 'Buy milk');
  await addTodo(page, 'Write report', { visibility: 'department', clearance: 2 });
  await addTodo(page, 'Water the plants', { description: 'The fern too' });
  check(JSON.stringify(await titles(page)) === '["Water the plants","Write report","Buy milk"]', 'three todos, newest first');

  await todo(page, 'Buy milk').getByRole('checkbox').click();
  await visible(page.locator('li.todo.done', { hasText: 'Buy milk' }));
  await filter(page, 'Open', ['Water the plants', 'Write report']);
  await filter(page, 'Done', ['Buy milk']);
  await filter(page, 'All', ['Water the plants', 'Write report', 'Buy milk']);

  await todo(page, 'Write report').getByRole('button', { name: /^Edit/ }).click();
  const edit = page.getByRole('form', { name: /^Edit/ });
  await edit.getByLabel('Title').fill('Write the quarterly report');
  await edit.getByLabel('Description').fill('Figures from the finance team, due Friday.');
  await edit.getByRole('button', { name: 'Save' }).click();
  await visible(todo(page, 'Write the quarterly report'));
  check((await todo(page, 'Write the quarterly report').textContent()).includes('Department'), 'an edit keeps the visibility');

  await todo(page, 'Water the plants').getByRole('button', { name: /^Delete/ }).click();
  await page.getByRole('button', { name: 'Yes, delete' }).click();
  await until(async () => (await titles(page)).length === 2, 'a todo is deleted');

  // A reload keeps the session (refresh token in sessionStorage) and the state.
  await page.reload();
  await visible(page.getByRole('heading', { name: 'My todos' }));
  await until(async () => JSON.stringify(await titles(page)) === '["Write the quarterly report","Buy milk"]',
    'after a reload, still signed in with the same todos');
  check(await page.locator('li.todo.done', { hasText: 'Buy milk' }).count() === 1, 'the completed todo stays completed');

  // The access token is renewed before it expires (15 s here)…
  const renewal = await page.waitForRequest((r) => r.url().endsWith('/auth/token')
    && (r.postData() ?? '').includes('grant_type=refresh_token'), { timeout: 30_000 });
  check(renewal !== null, 'the access token is renewed before it expires');
  await filter(page, 'Done', ['Buy milk']);
  // …and once on a 401 (here a simulated one).
  let refused = false;
  const todoList = (url) => url.pathname === '/api/todos';
  await page.route(todoList, (route) => {
    if (refused) return route.continue();
    refused = true;
    return route.fulfill({ status: 401, contentType: 'application/json', body: '{"error":"Could not validate credentials"}' });
  });
  await allowing([/status of 401/], () => filter(page, 'All', ['Write the quarterly report', 'Buy milk']));
  check(refused && await page.getByRole('heading', { name: 'My todos' }).isVisible(), 'a 401 is fixed by one refresh');
  await page.unroute(todoList);
  await page.screenshot({ path: path.join(artifacts, 'todos.png'), fullPage: true });

  const phone = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  const small = await phone.newPage();
  watch(small, 'phone');
  await small.goto(base);
  await signIn(small, username, password);
  await visible(todo(small, 'Buy milk'));
  await small.screenshot({ path: path.join(artifacts, 'todos-phone.png'), fullPage: true });
  await phone.close();

  // The admin, in a second context: refused when removing the last admin,
  // then promotes the new user.
  const adminContext = await browser.newContext({ viewport: { width: 960, height: 900 } });
  const admin = await adminContext.newPage();
  watch(admin, 'admin');
  await admin.goto(base);
  await signIn(admin, 'admin', 'secret');
  await admin.getByRole('link', { name: 'Users' }).click();
  await visible(admin.getByRole('heading', { name: 'Users' }));
  const card = (name) => admin.locator('li.user', { has: admin.locator('.username', { hasText: new RegExp(`^${name}$`) }) });
  await visible(card(username));

  await allowing([/status of 409/], async () => {
    await card('admin').getByRole('button', { name: 'Disable' }).click();
    await until(async () => (await card('admin').locator('.message').textContent()) === 'Cannot remove the last active admin',
      'the 409 of the last admin is shown as a message');
  });

  await card(username).getByLabel('Role').selectOption('admin');
  await card(username).getByRole('button', { name: 'Save' }).click();
  await visible(card(username).locator('.tag.admin'));
  await admin.reload();
  await visible(card(username));
  check(await card(username).getByLabel('Role').inputValue() === 'admin', 'the promotion is stored');
  await admin.screenshot({ path: path.join(artifacts, 'admin.png'), fullPage: true });

  await page.reload();
  await visible(page.getByRole('link', { name: 'Users' }));
  check((await page.locator('#who-name').textContent()).includes('(admin)'), 'the promoted user sees the users page');

  // Alice is no admin: no users page, and the URL of it shows the 403.
  const aliceContext = await browser.newContext();
  const alice = await aliceContext.newPage();
  watch(alice, 'alice');
  await alice.goto(base);
  await signIn(alice, 'alice', 'wonderland');
  check(!(await alice.getByRole('link', { name: 'Users' }).isVisible()), 'alice sees no users link');
  await allowing([/status of 403/], async () => {
    await alice.goto(`${base}/#/users`);
    await until(async () => ((await notice(alice).textContent()) ?? '').includes('Not authorized'),
      'alice gets the 403 as a message on the users page');
  });
  check(await alice.locator('li.user').count() === 0, 'alice sees no users');

  // A session the server ended: back to the sign-in form with a message.
  await card(username).getByRole('button', { name: 'Disable' }).click();
  await visible(card(username).locator('.tag.disabled'));
  await allowing([/status of 401/], async () => {
    await page.getByRole('link', { name: 'Shared with me' }).click();
    await visible(page.getByRole('heading', { name: 'Sign in' }));
  });
  check((await notice(page).textContent()).includes('session has ended'), 'an ended session leads back to the sign-in form');
} catch (error) {
  failed = true;
  console.error(error);
} finally {
  await browser.close();
}
for (const problem of problems) console.error(problem);
if (failed || problems.length > 0) {
  console.error('FAILED');
  process.exit(1);
}
console.log('all web checks passed');
