// A person logs in, creates a wiki page with a table and a code block, edits it, and reads
// its history and a diff; the screenshots stay in artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startForge, launchBrowser, artifacts } from './harness.mjs';

let forge;
let browser;

before(async () => {
  forge = await startForge('wiki');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await forge?.stop();
});

test('write, edit, and compare versions of a wiki page', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await ctx.newPage();
  // Sign up, then log out and in again as a returning user would.
  await page.goto(`${forge.base}/auth/signup`);
  await page.getByLabel('Username').fill('wendy');
  await page.getByLabel('Email').fill('wendy@example.org');
  await page.getByLabel('Password').fill('a long password');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.locator('header.site').getByRole('link', { name: 'Log in' }).click();
  await page.getByLabel('Username').fill('wendy');
  await page.getByLabel('Password').fill('a long password');
  await page.getByRole('button', { name: 'Log in' }).click();

  await page.goto(`${forge.base}/p/add`);
  await page.getByLabel('Name', { exact: true }).fill('Widget Works');
  await page.getByLabel('Short name').fill('widgets');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.locator('.tabs').getByRole('link', { name: 'Wiki' }).click();
  await page.waitForURL(`${forge.base}/p/widgets/wiki/Home/`);

  // A new page from the wiki's own menu.
  await page.getByLabel('New page name').fill('Parts List');
  await page.getByRole('button', { name: 'New page' }).click();
  await page.getByLabel(/^Text/).fill([
    '# Parts List', '', '| Part | Count |', '|------|-------|', '| Bolt | 12 |', '| Nut | 30 |', '',
    '```python', 'def total(parts):', '    return sum(p.count for p in parts)', '```', '',
  ].join('\n'));
  await page.getByLabel('Labels').fill('inventory');
  await page.getByRole('button', { name: 'Preview' }).click();
  assert.equal(await page.locator('.preview table').count(), 1);
  await page.getByRole('button', { name: 'Save' }).click();
  await page.waitForURL(`${forge.base}/p/widgets/wiki/Parts%20List/`);
  assert.equal(await page.locator('.markdown table td').first().innerText(), 'Bolt');
  assert.ok(await page.locator('.markdown pre code span[class^="hl-"]').count() > 0, 'code is highlighted');

  // Edit: change a count.
  await page.getByRole('link', { name: 'Edit' }).click();
  const text = await page.getByLabel(/^Text/).inputValue();
  await page.getByLabel(/^Text/).fill(text.replace('| Nut | 30 |', '| Nut | 42 |'));
  await page.getByLabel('Comment').fill('recounted nuts');
  await page.getByRole('button', { name: 'Save' }).click();
  assert.match(await page.locator('.flash').innerText(), /Saved version 2/);
  assert.match(await page.locator('.markdown').innerText(), /42/);

  // History and diff.
  await page.getByRole('link', { name: 'History' }).click();
  assert.equal(await page.locator('table.history tbody tr').count(), 2);
  assert.match(await page.locator('table.history').innerText(), /recounted nuts/);
  await page.getByRole('button', { name: 'Compare' }).click();
  assert.match(page.url(), /diff\?v1=1&v2=2/);
  assert.match(await page.locator('tr.del mark').first().innerText(), /30/);
  assert.match(await page.locator('tr.add mark').first().innerText(), /42/);
  await page.screenshot({ path: join(artifacts, 'wiki-diff.png'), fullPage: true });
  await page.goto(`${forge.base}/p/widgets/wiki/Parts%20List/`);
  await page.screenshot({ path: join(artifacts, 'wiki-page.png'), fullPage: true });

  // Watch the page: the button turns into "Unwatch page".
  await page.getByRole('button', { name: 'Watch page' }).click();
  assert.match(await page.locator('.flash').innerText(), /You are watching Parts List/);
  assert.equal(await page.getByRole('button', { name: 'Unwatch page' }).count(), 1);

  // Search from the header box; indexing runs in the background, so try for a few seconds.
  let hits = 0;
  for (let i = 0; i < 40 && hits === 0; i++) {
    await page.getByLabel('Search the forge').fill('bolt');
    await page.getByLabel('Search the forge').press('Enter');
    await page.waitForURL(/\/search\?q=bolt/);
    hits = await page.locator('article.hit').count();
    if (hits === 0) await page.waitForTimeout(250);
  }
  assert.equal(hits, 1, 'the new page is found');
  assert.match(await page.locator('article.hit .snippet b').first().innerText(), /Bolt/i);
  await page.screenshot({ path: join(artifacts, 'search.png'), fullPage: true });
  await page.locator('article.hit h3 a').click();
  await page.waitForURL(`${forge.base}/p/widgets/wiki/Parts%20List/`);
  await ctx.close();
});
