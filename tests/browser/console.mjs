// The staff console driven like a person would, in headless Chromium (playwright-core,
// the system's /usr/bin/chromium: no browser download). Called by tests/tests/browser.rs
// with one JSON argument:
//   {base, token, newProduct, editProduct, email, shots, chromium?}
// signs in, creates a link for `newProduct` with the course picker, removes course 102
// from `editProduct` (whose student `email` is enrolled) through the confirmation page,
// then finds the student and reads their timeline until the removal shows up.
// Prints one JSON line with what it saw; exits non-zero (message on stderr) on failure.
// Screenshots go to `shots` (links page with the picker, confirmation, student timeline).

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = JSON.parse(process.argv[2] ?? '{}');
for (const k of ['base', 'token', 'newProduct', 'editProduct', 'email', 'shots']) {
  if (args[k] === undefined) {
    console.error(`missing ${k} in the JSON argument`);
    process.exit(2);
  }
}

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
}

// Without the background-networking flags Chromium dials out and, on a closed network,
// its connections are refused; a fresh profile keeps runs independent.
const profile = mkdtempSync(join(tmpdir(), 'tollgate-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium ?? '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1200, height: 900 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const out = {};
try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);

  // Signed out: the sign-in form. The token goes in the form, never in a URL.
  await page.goto(`${args.base}/console`);
  await page.fill('input[name=token]', args.token);
  await Promise.all([page.waitForURL('**/console/links'), page.click('button:has-text("Sign in")')]);
  const cookies = await context.cookies();
  out.cookie = cookies.map((c) => ({ name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite }));
  check(cookies.length === 1 && !cookies[0].value.includes(args.token), 'a session id, not the token, in the cookie');
  check(!page.url().includes(args.token), 'no token in the URL');

  // The picker: one checkbox per TalentLMS course, labelled with its name.
  out.picker = await page.$$eval('input[name=courses]', (boxes) =>
    boxes.map((b) => ({ id: b.value, label: b.closest('label').textContent.trim() })),
  );
  check(out.picker.length >= 3, `courses in the picker: ${JSON.stringify(out.picker)}`);
  await page.fill('input[name=product_id]', String(args.newProduct));
  await page.check('input[name=courses][value="101"]');
  await page.check('input[name=courses][value="103"]');
  await page.selectOption('select[name=policy]', 'lifetime');
  await page.screenshot({ path: join(args.shots, 'console-links.png'), fullPage: true });
  await page.click('button:has-text("Save")');
  await page.waitForSelector('h1:has-text("Link saved")');
  out.created = (await page.textContent('p.ok')).trim();

  // The new link is in the list; search narrows to it.
  await page.goto(`${args.base}/console/links?q=${args.newProduct}`);
  out.listed = await page.$$eval('table tr td:first-child', (tds) => tds.map((td) => td.textContent.trim()));

  // Edit the student's product: untick course 102, save, confirm on the impact page.
  await page.goto(`${args.base}/console/links?edit=${args.editProduct}`);
  check(await page.isChecked('input[name=courses][value="102"]'), 'the edit form starts from the current courses');
  await page.uncheck('input[name=courses][value="102"]');
  await page.click('button:has-text("Save")');
  await page.waitForSelector('#affected');
  out.affected = Number(await page.textContent('#affected'));
  out.confirmText = (await page.textContent('main section')).replace(/\s+/g, ' ').trim();
  await page.screenshot({ path: join(args.shots, 'console-confirm.png'), fullPage: true });
  await page.click('#confirm');
  await page.waitForSelector('h1:has-text("Link saved")');
  out.fanOut = (await page.textContent('main')).replace(/\s+/g, ' ').trim();

  // Find the student by email; the timeline shows the removal once the workflow ran it.
  await page.goto(`${args.base}/console/students`);
  const deadline = Date.now() + 30_000;
  for (;;) {
    await page.fill('input[name=email]', args.email);
    await page.click('button:has-text("Find")');
    await page.waitForLoadState();
    const rows = await page.$$eval('table.timeline tr', (trs) =>
      trs.slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())),
    );
    out.timeline = rows.map(([when, state, until, reason, talentlms]) => ({ when, state, until, reason, talentlms }));
    out.state = (await page.textContent('b.state').catch(() => null))?.trim();
    if (out.timeline.some((r) => r.talentlms.includes('course 102'))) break;
    if (Date.now() > deadline) throw new Error(`the removal never reached the timeline: ${JSON.stringify(out.timeline)}`);
    await page.waitForTimeout(500);
  }
  out.temporalUi = await page.getAttribute('a:has-text("Temporal UI")', 'href');
  await page.screenshot({ path: join(args.shots, 'console-student.png'), fullPage: true });
  console.log(JSON.stringify(out));
} catch (e) {
  console.error(String(e?.stack ?? e));
  console.error(`seen so far: ${JSON.stringify(out)}`);
  process.exitCode = 1;
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
