// A person starts a topic in their project's forum, someone replies (the author, quoting
// nothing but their own words here), and as the project's moderator they close the topic:
// its page then says it takes no new posts. Screenshots stay in artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startForge, launchBrowser, artifacts } from './harness.mjs';

let forge;
let browser;

before(async () => {
  forge = await startForge('forum');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await forge?.stop();
});

test('a topic, a reply, a preview, and a moderator closing it', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1200, height: 1000 } });
  const page = await ctx.newPage();
  await page.goto(`${forge.base}/auth/signup`);
  await page.getByLabel('Username').fill('fiona');
  await page.getByLabel('Email').fill('fiona@example.org');
  await page.getByLabel('Password').fill('a long password');
  await page.getByRole('button', { name: 'Sign up' }).click();
  await page.goto(`${forge.base}/p/add`);
  await page.getByLabel('Name', { exact: true }).fill('Forum Lab');
  await page.getByLabel('Short name').fill('forumlab');
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.locator('.tabs').getByRole('link', { name: 'Discussion' }).click();
  await page.waitForURL(`${forge.base}/p/forumlab/discussion/`);
  assert.match(await page.locator('main').innerText(), /General Discussion/);

  // Start a topic in the default forum, previewing it first.
  await page.locator('#forum-general').getByRole('link', { name: 'New topic' }).click();
  await page.waitForURL(`${forge.base}/p/forumlab/discussion/general/new`);
  await page.getByLabel(/^Subject/).fill('Welcome to the lab');
  await page.getByLabel(/^Message/).fill('Say **hello** here.');
  await page.getByRole('button', { name: 'Preview' }).click();
  assert.match(await page.locator('#preview').innerHTML(), /<strong>hello<\/strong>/);
  assert.equal(await page.getByLabel(/^Message/).inputValue(), 'Say **hello** here.');
  await page.getByRole('button', { name: 'Post topic' }).click();
  await page.waitForURL(/\/p\/forumlab\/discussion\/general\/thread\/[0-9a-f]{24}\/$/);
  const topicUrl = page.url();
  assert.match(await page.locator('.topic-subject').innerText(), /Welcome to the lab/);

  // Reply through the discussion section.
  await page.getByLabel('Add a comment (Markdown)').fill('Hello from *me*.');
  await page.getByRole('button', { name: 'Comment', exact: true }).click();
  await page.waitForURL(/#post-/);
  assert.match(await page.locator('.discussion').innerText(), /Hello from me/);

  // The forum lists the topic with its reply.
  await page.goto(`${forge.base}/p/forumlab/discussion/general/`);
  assert.match(await page.locator('table.topics').innerText(), /Welcome to the lab/);

  // As moderator: close it; the page says so and offers no form.
  await page.goto(topicUrl);
  await page.locator('details.moderate-topic summary').click();
  await page.getByRole('button', { name: 'Close', exact: true }).click();
  await page.waitForURL(topicUrl);
  assert.match(await page.locator('main').innerText(), /This thread is closed: it takes no new posts/);
  assert.equal(await page.locator('#discussion-form').count(), 0);
  assert.match(await page.locator('.topic-head').innerText(), /closed/);
  await page.screenshot({ path: join(artifacts, 'forum-thread.png'), fullPage: true });
  await page.goto(`${forge.base}/p/forumlab/discussion/`);
  await page.screenshot({ path: join(artifacts, 'forum-index.png'), fullPage: true });
  await ctx.close();
});
