// A person sets up their tracker with a custom field, files a ticket, comments on it, and
// closes it by pushing a commit whose message says it fixes the ticket; the ticket's page
// then shows the change in its history. Screenshots stay in artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startForge, launchBrowser, artifacts } from './harness.mjs';

let forge;
let browser;

before(async () => {
  forge = await startForge('tracker');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await forge?.stop();
});

function git(cwd, ...args) {
  return execFileSync('git', args, {
    cwd,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0', HOME: cwd },
    stdio: ['ignore', 'pipe', 'pipe'],
  }).toString();
}

test('a custom field, a ticket, a comment, and a commit that closes it', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const page = await ctx.newPage();
  await page.goto(`${forge.base}/auth/signup`);
  await page.getByLabel('Username').fill('tess');
  await page.getByLabel('Email').fill('tess@example.org');
  await page.getByLabel('Password').fill('a long password');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.goto(`${forge.base}/p/add`);
  await page.getByLabel('Name', { exact: true }).fill('Gadget Lab');
  await page.getByLabel('Short name').fill('gadgets');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.locator('.tabs').getByRole('link', { name: 'Tickets' }).click();
  await page.waitForURL(`${forge.base}/p/gadgets/tickets/`);

  // Settings: a "Severity" select field shown in the list.
  await page.getByRole('link', { name: 'Tracker settings' }).click();
  const row = page.locator('input[name="cf_0_label"]');
  await row.fill('Severity');
  await page.locator('select[name="cf_0_type"]').selectOption('select');
  await page.locator('input[name="cf_0_options"]').fill('minor, major');
  await page.locator('input[name="cf_0_show"]').check();
  await page.getByRole('button', { name: 'Save settings' }).click();
  assert.equal(await page.locator('input[name="cf_0_name"]').inputValue(), '_severity');

  // File a ticket using it.
  await page.goto(`${forge.base}/p/gadgets/tickets/new`);
  await page.getByLabel(/^Summary/).fill('Widget crashes on start');
  await page.getByLabel(/^Description/).fill('Steps:\n\n1. start it\n2. **crash**');
  await page.getByLabel(/^Labels/).fill('bug, startup');
  await page.getByLabel(/^Severity/).selectOption('major');
  await page.getByRole('button', { name: 'File ticket' }).click();
  await page.waitForURL(`${forge.base}/p/gadgets/tickets/1/`);
  assert.match(await page.locator('main').innerText(), /Widget crashes on start/);
  assert.match(await page.locator('main').innerText(), /major/);

  // Comment on it.
  await page.getByLabel('Add a comment (Markdown)').fill('Seen on *two* machines.');
  await page.getByRole('button', { name: 'Comment', exact: true }).click();
  await page.waitForURL(/\/p\/gadgets\/tickets\/1\/#post-/);
  assert.match(await page.locator('.discussion').innerText(), /Seen on two machines/);

  // The list shows it with its custom column.
  await page.goto(`${forge.base}/p/gadgets/tickets/`);
  assert.match(await page.locator('table').innerText(), /Widget crashes on start/);
  assert.match(await page.locator('table').innerText(), /major/);

  // Push a commit that says it fixes #1.
  const dir = mkdtempSync(join(tmpdir(), 'forge-e2e-git-'));
  const url = forge.base.replace('http://', 'http://tess:a%20long%20password@') + '/git/p/gadgets/code.git';
  git(dir, 'init', '-q', '-b', 'main', 'work');
  const work = join(dir, 'work');
  git(work, 'config', 'user.name', 'Tess');
  git(work, 'config', 'user.email', 'tess@example.org');
  writeFileSync(join(work, 'widget.c'), 'int main(void) { return 0; }\n');
  git(work, 'add', '.');
  git(work, 'commit', '-q', '-m', 'Start cleanly, fixes #1');
  git(work, 'push', '-q', url, 'HEAD:main');

  // The refresh after the push closes the ticket (a background task): reload until it has.
  let status = '';
  for (let i = 0; i < 60 && status !== 'closed'; i++) {
    await page.goto(`${forge.base}/p/gadgets/tickets/1/`);
    status = (await page.locator('.ticket-status, .status').first().innerText()).trim();
    if (status !== 'closed') await page.waitForTimeout(250);
  }
  assert.equal(status, 'closed');
  const history = await page.locator('#history').innerText();
  assert.match(history, /open\s*→\s*closed/);
  assert.match(history, /Closed by commit/);
  await page.screenshot({ path: join(artifacts, 'tracker-ticket.png'), fullPage: true });
  await page.goto(`${forge.base}/p/gadgets/tickets/?q=status:all`);
  await page.screenshot({ path: join(artifacts, 'tracker-list.png'), fullPage: true });
  await ctx.close();
});
