// A person signs up, creates a project in the browser, manages members and tools, and a
// logged-out visitor cannot see the private project.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startForge, launchBrowser, artifacts } from './harness.mjs';

let forge;
let browser;

before(async () => {
  forge = await startForge('platform');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await forge?.stop();
});

async function signUp(page, username) {
  await page.goto(`${forge.base}/`);
  await page.getByRole('link', { name: 'Sign up' }).first().click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Full name').fill(`${username[0].toUpperCase()}${username.slice(1)} Tester`);
  await page.getByLabel('Email').fill(`${username}@example.org`);
  await page.getByLabel('Password').fill('a long password');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.waitForURL(`${forge.base}/u/${username}/`);
}

test('sign up, create a private project, add a member, install a tool', async () => {
  const other = await browser.newContext();
  await signUp(await other.newPage(), 'bea');

  const ctx = await browser.newContext({ viewport: { width: 1200, height: 800 } });
  const page = await ctx.newPage();
  await signUp(page, 'ada');
  assert.match(await page.locator('.flash').innerText(), /Welcome/);

  // Create a project; a bad short name comes back with a message and the typed values.
  await page.getByRole('link', { name: 'New project' }).first().click();
  await page.getByLabel('Name', { exact: true }).fill('Analytical Engine');
  await page.getByLabel('Short name').fill('Engine');
  await page.getByLabel('Summary').fill('Computes Bernoulli numbers');
  await page.getByLabel(/Private/).check();
  await page.getByRole('button', { name: 'Create project' }).click();
  assert.match(await page.locator('.field.has-error .error').first().innerText(), /lowercase/);
  assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'Analytical Engine');
  await page.getByLabel('Short name').fill('engine');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.waitForURL(`${forge.base}/p/engine/`);
  assert.match(await page.locator('.project-head h1').innerText(), /Analytical Engine/);
  assert.match(await page.locator('.project-head .badge').innerText(), /private/);

  // Members: add bea as developer.
  await page.getByRole('link', { name: 'Admin' }).click();
  await page.locator('.subnav').getByRole('link', { name: 'Members' }).click();
  await page.locator('#f-username').fill('bea');
  await page.locator('#f-role').selectOption('developer');
  await page.getByRole('button', { name: 'Add' }).click();
  assert.match(await page.locator('.flash').innerText(), /bea is now developer/);
  assert.match(await page.locator('table.list').innerText(), /@bea/);

  // Tools: install an external link; it shows in the project menu.
  await page.locator('.subnav').getByRole('link', { name: 'Tools' }).click();
  await page.locator('#f-kind').selectOption('link');
  await page.locator('#f-label').fill('Homepage');
  await page.locator('#f-mount').fill('homepage');
  await page.locator('#f-url').fill('https://example.org/engine');
  await page.getByRole('button', { name: 'Install', exact: true }).click();
  assert.match(await page.locator('.flash').innerText(), /Installed "Homepage"/);
  assert.equal(await page.locator('.tabs a', { hasText: 'Homepage' }).getAttribute('href'), 'https://example.org/engine');

  await page.getByRole('link', { name: 'Home' }).first().click();
  await page.screenshot({ path: join(artifacts, 'project-home.png'), fullPage: true });

  // bea now sees the private project; a logged-out visitor does not.
  const beaPage = await other.newPage();
  const seen = await beaPage.goto(`${forge.base}/p/engine/`);
  assert.equal(seen.status(), 200);
  await page.getByRole('button', { name: 'Log out' }).click();
  const res = await page.goto(`${forge.base}/p/engine/`);
  assert.equal(res.status(), 404);
  assert.match(await page.locator('main').innerText(), /Not found/);
  await ctx.close();
  await other.close();
});
