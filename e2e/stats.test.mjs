// A person creates a project (it comes with a git repository), pushes a first commit, opens
// the project's statistics page and leaves it open; then someone clones the repository with
// the real git client, and the page's clones figure changes without a reload (the forge's
// aggregation ticker runs, its live WebSocket carries the new value). Screenshot in
// artifacts/stats-live.png.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startForge, launchBrowser, artifacts } from './harness.mjs';

const run = promisify(execFile);
let forge;
let browser;
let work;

before(async () => {
  forge = await startForge('stats');
  browser = await launchBrowser();
  work = mkdtempSync(join(tmpdir(), 'forge-e2e-git-'));
});

after(async () => {
  await browser?.close();
  await forge?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

// git without prompts or the machine's configuration.
function git(args, cwd) {
  return run('git', ['-c', 'user.name=Stella', '-c', 'user.email=stella@example.org',
    '-c', 'init.defaultBranch=main', ...args], {
    cwd,
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', HOME: work },
  });
}

test('the clones figure of an open statistics page follows a clone', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const page = await ctx.newPage();
  await page.goto(`${forge.base}/auth/signup`);
  await page.getByLabel('Username').fill('stella');
  await page.getByLabel('Email').fill('stella@example.org');
  await page.getByLabel('Password').fill('a long password');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.goto(`${forge.base}/p/add`);
  await page.getByLabel('Name', { exact: true }).fill('Stats Lab');
  await page.getByLabel('Short name').fill('statslab');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.waitForURL(`${forge.base}/p/statslab/`);

  // The project has a repository tool, and its navigation links the statistics.
  const code = page.locator('.tabs a[href="/p/statslab/code/"]');
  assert.equal(await code.count(), 1, 'a git repository is installed');
  assert.equal(await page.locator('.tabs a[href="/p/statslab/stats/"]').count(), 1);

  // A first commit (an empty repository gives a clone no pack, which is not counted).
  const url = `${forge.base}/git/p/statslab/code.git`;
  const pushUrl = url.replace('http://', 'http://stella:a%20long%20password@');
  const src = join(work, 'src');
  await git(['init', src]);
  writeFileSync(join(src, 'README.md'), '# Stats Lab\n');
  await git(['add', 'README.md'], src);
  await git(['commit', '-m', 'First commit'], src);
  await git(['push', pushUrl, 'main'], src);

  // The statistics page, live.
  await page.locator('.tabs').getByRole('link', { name: 'Stats' }).click();
  await page.waitForURL(`${forge.base}/p/statslab/stats/`);
  await page.locator('#stats[data-live-state="open"]').waitFor({ timeout: 5000 });
  assert.equal(await page.locator('#series-clones canvas').count(), 1, 'a chart is drawn');
  const figure = page.locator('#series-clones [data-figure]');
  const before = Number(await figure.innerText());
  const todayRow = page.locator('#series-clones tbody tr').first().locator('td');
  const rowBefore = Number(await todayRow.innerText());
  // The page must not be reloaded: a marker set now would be gone.
  await page.evaluate(() => { window.__notReloaded = true; });

  await git(['clone', url, join(work, 'copy')]);
  const cloned = Date.now();
  await page.waitForFunction(
    (n) => Number(document.querySelector('#series-clones [data-figure]').textContent) > n,
    before,
    { timeout: 5000, polling: 100 },
  );
  const took = Date.now() - cloned;
  assert.equal(Number(await figure.innerText()), before + 1);
  assert.equal(Number(await todayRow.innerText()), rowBefore + 1, 'the table follows');
  assert.equal(await page.evaluate(() => window.__notReloaded), true, 'no reload');
  console.log(`clones figure updated ${took} ms after the clone`);
  await page.locator('#series-clones').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(artifacts, 'stats-live.png'), fullPage: true });
  await ctx.close();
});
