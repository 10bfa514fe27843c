// The admin dashboard as its users meet it: a real demo server, real phones, Chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import http from "node:http";
import jsQR from "jsqr";
import { PNG } from "pngjs";
import {
  ADMIN_PASSWORD, CAMPAIGN, Phone, api, createAccount, launch, loggedIn, m2, startServer,
  tally, token,
} from "./harness.mjs";

const SHOTS = resolve(import.meta.dirname, "..", "..", "docs", "screenshots");
let server;
let browser;
let admin;
let head7;

before(async () => {
  server = await startServer();
  browser = await launch();
  admin = await token(server, "admin", ADMIN_PASSWORD);
  head7 = Phone.enroll(server, "head-7", server.codes["7"]);
});

after(async () => {
  await browser?.close();
  server?.stop();
});

/** The first units of a building as the phone holds them. */
function units(phone, building) {
  return phone.run("units", building).units;
}

test("the overview's numbers are the tally API's for the demo election", async () => {
  const [u1, u2] = units(head7, "7");
  head7.run("deliver", CAMPAIGN, u1);
  head7.run("vote", CAMPAIGN, u1, "q1", "cand-1", "cand-2");
  head7.run("vote", CAMPAIGN, u2, "q1", "cand-3");
  head7.run("sync");
  const t = await tally(server, admin);
  assert.ok(t.returned.headcount >= 2, "the phone's ballots reached the tally");

  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  const card = page.locator(`#card-${CAMPAIGN}`);
  const values = await card.locator(".meter-value").allTextContents();
  assert.equal(values[0], `${m2(t.returned.area)} / ${m2(t.totals.area)} m²`);
  assert.equal(values[1], `${t.returned.headcount} / ${t.totals.headcount} 人`);
  assert.equal(await card.locator("[data-figure=returned]").textContent(), String(t.returned.headcount));
  assert.equal(await card.locator("[data-figure=conflicts]").textContent(), String(t.conflicts.length));
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, "overview.png"), fullPage: false });
  await page.context().close();
});

test("a phone's sync updates the open overview without a reload; the table shows a badge instead of moving", async () => {
  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  await page.waitForSelector("#live-state[data-state=on]");
  await page.evaluate(() => { window.__sameDocument = true; });
  // The server pushes the changed card over the live feed: the page asks for nothing.
  const cardRequests = [];
  page.on("request", (r) => { if (/\/card$/.test(new URL(r.url()).pathname)) { cardRequests.push(r.url()); } });
  const card = page.locator(`#card-${CAMPAIGN} [data-figure=returned]`);
  const before = Number(await card.textContent());
  const row3 = page.locator("section[data-live-table] tbody tr").nth(2);
  const rowBefore = await row3.textContent();

  // Building 3's head works offline, then reconnects.
  const head3 = Phone.enroll(server, "head-3", server.codes["3"]);
  const [a, b] = units(head3, "3");
  head3.run("visit", CAMPAIGN, a, "delivered");
  head3.run("vote", CAMPAIGN, a, "q1", "cand-4");
  head3.run("visit", CAMPAIGN, b, "not_home");
  head3.run("sync");

  await page.waitForFunction(
    (n) => Number(document.querySelector(".card [data-figure=returned]").textContent) > n,
    before, { timeout: 10000 },
  );
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "the page was not reloaded");
  assert.deepEqual(cardRequests, [], "the card arrived pushed, not refetched");
  const badge = page.locator("section[data-live-table] .badge");
  await badge.waitFor({ state: "visible", timeout: 10000 });
  assert.match(await badge.textContent(), /\d+ 条新同步 · 刷新/);
  assert.equal(await row3.textContent(), rowBefore, "the table being read did not change under the reader");
  assert.match(await page.locator("#updated-at").textContent(), /^\d\d:\d\d:\d\d$/);
  await page.context().close();
});

test("a counting officer decides a duplicate ballot; a second officer deciding it too is told who already did", async () => {
  const deputy = await createAccount(server, admin,
    { login: "deputy-7", name: "副楼长", roles: ["building_head"], building: "7" });
  const code = await api(server, "POST", `/api/v1/admin/accounts/${deputy.id}/enrollment-codes`, admin);
  const phone = Phone.enroll(server, "deputy-7", code.body.code);
  const unit = units(phone, "7")[5];
  head7.run("vote", CAMPAIGN, unit, "q1", "cand-1");
  phone.run("vote", CAMPAIGN, unit, "q1", "cand-2");
  head7.run("sync");
  phone.run("sync");

  await createAccount(server, admin,
    { login: "officer2", name: "第二计票人", roles: ["counting_officer"], password: "officer-two-pass" });
  const first = await loggedIn(browser, server, "officer", server.officerPassword);
  const second = await loggedIn(browser, server, "officer2", "officer-two-pass");
  for (const p of [first, second]) {
    await p.goto(`${server.base}/campaigns/${CAMPAIGN}/conflicts`);
  }
  const conflict = first.locator("article.conflict").first();
  assert.equal(await conflict.locator("fieldset.ballot").count(), 2, "both ballots side by side");
  assert.match(await conflict.textContent(), /7号楼楼栋长/);
  assert.match(await conflict.textContent(), /副楼长/);
  await conflict.locator("input[name=chosen]").first().check();
  await conflict.locator("textarea[name=reason]").fill("业主当面确认第一张为本人所投");
  await Promise.all([first.waitForNavigation(), conflict.locator("button[type=submit]").click()]);
  assert.match(await first.locator("#h-done").textContent(), /已裁决（1）/);

  const stale = second.locator("article.conflict").first();
  await stale.locator("input[name=chosen]").nth(1).check();
  await stale.locator("textarea[name=reason]").fill("另一位计票人的判断");
  await Promise.all([second.waitForNavigation(), stale.locator("button[type=submit]").click()]);
  const alert = second.locator(".alert[data-code=already_adjudicated]");
  assert.match(await alert.textContent(), /已由 计票人 于 \d\d:\d\d:\d\d 裁决/);
  const t = await tally(server, admin);
  assert.equal(t.adjudicated.length, 1, "only the first decision counts");
  await first.context().close();
  await second.context().close();
});

test("the printed 公示 carries the tally's numbers and a hash anyone can recompute", async () => {
  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  await page.goto(`${server.base}/campaigns/${CAMPAIGN}/notice/preliminary`);
  const pdf = join(server.dir, "notice.pdf");
  await page.pdf({ path: pdf, format: "A4", printBackground: true, preferCSSPageSize: true });
  const text = execFileSync("pdftotext", ["-layout", pdf, "-"], { encoding: "utf8" });
  const t = await tally(server, admin);
  assert.match(text, new RegExp(`投票涉及总人数\\s+${t.totals.headcount} 人`));
  assert.match(text, new RegExp(`投票涉及总面积\\s+${m2(t.totals.area).replace(".", "\\.")} m²`));
  assert.match(text, new RegExp(`收回有效表决票\\s+${t.returned.headcount} 人，${m2(t.returned.area).replace(".", "\\.")} m²`));
  const q = t.questions[0].outcome;
  for (const c of q.candidates) {
    const share = c.counts.participating.headcount > 0 ? "" : "—";
    assert.match(text, new RegExp(`${c.name}\\s+${c.counts.yes.headcount}\\s+${share}`));
  }
  assert.match(text, /第\s*1\s*页\s*\/\s*共\s*\d+\s*页/, "pages are numbered");
  assert.ok(!text.includes("127.0.0.1"), "no browser header or footer with the address");
  // A long hash may wrap across lines in the PDF.
  const hash = text.replace(/\s+/g, "").match(/计票输入哈希（SHA-256）：([0-9a-f]{64})/)?.[1];
  assert.equal(hash, t.inputs_hash);
  const inputs = await fetch(`${server.base}/api/v1/admin/campaigns/${CAMPAIGN}/exports/tally-inputs.json`,
    { headers: { authorization: `Bearer ${admin}` } });
  assert.equal(inputs.status, 200);
  const bytes = Buffer.from(await inputs.arrayBuffer());
  assert.equal(createHash("sha256").update(bytes).digest("hex"), hash, "the hash recomputes from the inputs file");
  await page.context().close();
});

test("a phone enrolls with what the dashboard's QR code holds", async () => {
  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  await page.goto(`${server.base}/devices`);
  await Promise.all([page.waitForNavigation(), page.click("button[aria-label='为 5号楼楼栋长 生成入网二维码']")]);
  const png = PNG.sync.read(await page.locator("#enroll-qr svg").screenshot());
  const decoded = jsQR(new Uint8ClampedArray(png.data), png.width, png.height);
  assert.ok(decoded, "the QR image decodes");
  const uri = new URL(decoded.data);
  assert.equal(uri.protocol, "doorstep:");
  const serverUrl = uri.searchParams.get("server");
  const code = uri.searchParams.get("code");
  assert.equal(serverUrl, server.base);
  assert.equal(code, (await page.locator("#enroll-code").textContent()).trim());
  const phone = new Phone(server.dir, "head-5-scanned");
  const out = phone.run("enroll", serverUrl, code, "扫码手机");
  assert.equal(out.enrolled, true);
  const devices = await api(server, "GET", "/api/v1/admin/devices", admin);
  assert.ok(devices.body.some((d) => d.label === "扫码手机" && d.login === "head-5"));
  await page.context().close();
});

test("an admin adds a building head on the dashboard, gives them a building, and a taken login is refused", async () => {
  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  await page.goto(`${server.base}/devices`);
  await page.fill("#new-login", "head-4b");
  await page.fill("#new-name", "四号楼新楼长");
  await page.selectOption("#new-role", "building_head");
  await Promise.all([page.waitForNavigation(), page.click(".new-account button[type=submit]")]);
  const row = page.locator("tr", { hasText: "四号楼新楼长" });
  await row.locator("select[name=building]").selectOption("tpy/4");
  await Promise.all([page.waitForNavigation(), row.locator("button", { hasText: "分配" }).click()]);
  assert.match(await page.locator("tr", { hasText: "四号楼新楼长" }).textContent(), /4 号楼/);
  const assignments = await api(server, "GET", "/api/v1/admin/assignments", admin);
  const account = (await api(server, "GET", "/api/v1/admin/accounts", admin)).body.find((a) => a.login === "head-4b");
  assert.ok(assignments.body.some((a) => a.account_id === account.id && a.building === "4"));

  await page.fill("#new-login", "head-4b");
  await page.fill("#new-name", "重名的人");
  await Promise.all([page.waitForNavigation(), page.click(".new-account button[type=submit]")]);
  assert.equal(await page.locator(".alert[data-code=login_taken]").count(), 1);
  assert.equal(await page.inputValue("#new-name"), "重名的人", "what was typed is kept");
  await page.context().close();
});

test("hostile text shows as text, cross-site and token-less posts are refused, heads get 403", async () => {
  const unit = units(head7, "7")[3];
  const evil = "<script>alert(1)</script>";
  const patch = await api(server, "PATCH", `/api/v1/admin/households/tpy/${unit}`, admin, { contact_name: evil });
  assert.equal(patch.status, 200, patch.text);
  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  let dialogs = 0;
  page.on("dialog", (d) => { dialogs += 1; d.dismiss(); });
  await page.goto(`${server.base}/buildings/tpy/7`);
  assert.ok((await page.locator("td.contact").allTextContents()).includes(evil), "shown as text");
  assert.equal(dialogs, 0, "no script ran");

  // Same browser, no CSRF token: refused, nothing changes.
  const res = await page.request.post(`${server.base}/campaigns/${CAMPAIGN}/actions/open`,
    { form: { confirm: "yes" }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  assert.equal(res.headers()["x-error-code"], "csrf");

  // Another site's page posting a form to the dashboard: the session cookie is not sent.
  const evilSite = http.createServer((_, r) => {
    r.setHeader("content-type", "text/html; charset=utf-8");
    r.end(`<form id=f method=post action="${server.base}/campaigns/${CAMPAIGN}/actions/open">
      <input name=confirm value=yes></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((ok) => evilSite.listen(0, "127.0.0.1", ok));
  const attacker = await page.context().newPage();
  await attacker.goto(`http://localhost:${evilSite.address().port}/`);
  await attacker.waitForLoadState("load");
  await attacker.waitForTimeout(500);
  evilSite.close();
  const campaign = await api(server, "GET", `/api/v1/admin/campaigns/${CAMPAIGN}`, admin);
  assert.equal(campaign.body.status, "published", "the cross-site post changed nothing");

  // A building head with a password may log in, and sees only refusals.
  await createAccount(server, admin,
    { login: "head-pw", name: "有密码的楼栋长", roles: ["building_head"], password: "head-password-1", building: "2" });
  const head = await loggedIn(browser, server, "head-pw", "head-password-1");
  for (const path of ["/", "/buildings", "/campaigns", `/campaigns/${CAMPAIGN}`, `/campaigns/${CAMPAIGN}/conflicts`,
    "/devices", "/audit", `/campaigns/${CAMPAIGN}/notice/preliminary`, `/campaigns/${CAMPAIGN}/actions/open`]) {
    const r = await head.goto(server.base + path);
    assert.equal(r.status(), 403, `${path} is refused`);
    assert.match(await head.locator("h1").textContent(), /无权访问/);
  }
  await head.context().close();
  await page.context().close();
});

test("an expired session goes to the login page and keeps the form being filled in", async () => {
  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  await page.goto(`${server.base}/campaigns/${CAMPAIGN}/actions/open`);
  // The session ends on the server while the admin reads the confirmation.
  const cookie = (await page.context().cookies()).find((c) => c.name === "doorstep_session");
  assert.ok(cookie.httpOnly, "the session cookie is HttpOnly");
  assert.equal(cookie.sameSite, "Strict");
  const out = await api(server, "POST", "/api/v1/auth/logout", cookie.value);
  assert.equal(out.status, 204);
  await Promise.all([page.waitForNavigation(), page.click("#confirm")]);
  assert.match(await page.locator(".alert").textContent(), /登录已过期/);
  await page.fill("#login", "admin");
  await page.fill("#password", ADMIN_PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  await Promise.all([page.waitForNavigation(), page.click("#resubmit")]);
  assert.match(page.url(), /done=open/);
  const campaign = await api(server, "GET", `/api/v1/admin/campaigns/${CAMPAIGN}`, admin);
  assert.equal(campaign.body.status, "open", "the kept form was submitted after logging in again");
  await page.context().close();
});

test("the office closes, tallies and publicises with confirmations; a step out of order is refused and explained", async () => {
  const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD);
  for (const [action, label] of [["close", "截止投票"], ["tally", "计票"], ["publicise", "公示"]]) {
    await page.goto(`${server.base}/campaigns/${CAMPAIGN}`);
    await Promise.all([page.waitForNavigation(), page.click(`a[href$="/actions/${action}"]`)]);
    assert.match(await page.locator("main h2").first().textContent(), new RegExp(`确认：${label}`));
    await Promise.all([page.waitForNavigation(), page.click("#confirm")]);
    assert.match(await page.locator(".ok").textContent(), new RegExp(`已完成：${label}`));
  }
  const refused = await page.goto(`${server.base}/campaigns/${CAMPAIGN}/actions/open`);
  assert.equal(refused.status(), 409);
  assert.equal(refused.headers()["x-error-code"], "wrong_status");
  assert.match(await page.locator(".alert").textContent(), /逐步推进，不能跳步或回退/);

  const t = await tally(server, admin);
  assert.equal(t.is_final, true);
  await page.goto(`${server.base}/campaigns/${CAMPAIGN}/notice/final`);
  assert.equal(await page.locator(".paper > .alert").count(), 0, "a publicised result carries no warning");
  assert.equal(await page.locator("[data-figure=inputs-hash]").textContent(), t.inputs_hash);
  await page.screenshot({ path: join(SHOTS, "notice.png"), fullPage: false });
  await page.context().close();
});

const PAGES = ["/", "/buildings", "/buildings/tpy/7", "/campaigns", `/campaigns/${CAMPAIGN}`,
  `/campaigns/${CAMPAIGN}/conflicts`, "/devices", "/audit",
  `/campaigns/${CAMPAIGN}/notice/announcement`, `/campaigns/${CAMPAIGN}/notice/preliminary`, "/login",
  "/exports", "/orders", "/register", "/campaigns/new", `/buildings/tpy/7/units/7-1-0101`];

for (const viewport of [{ width: 1280, height: 800 }, { width: 390, height: 844 }]) {
  test(`every page has labelled fields and ordered headings, and fits ${viewport.width}×${viewport.height}`, async () => {
    const page = await loggedIn(browser, server, "admin", ADMIN_PASSWORD, viewport);
    for (const path of PAGES) {
      const r = await page.goto(server.base + path);
      assert.equal(r.status(), 200, path);
      const problems = await page.evaluate(() => {
        const out = [];
        for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
          const labelled = (el.id && document.querySelector(`label[for="${el.id}"]`)) ||
            el.getAttribute("aria-label") || el.closest("label");
          if (!labelled) { out.push(`unlabelled ${el.outerHTML.slice(0, 80)}`); }
        }
        let last = 0;
        const hs = [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")];
        if (document.querySelectorAll("h1").length !== 1) { out.push("not exactly one h1"); }
        for (const h of hs) {
          const level = Number(h.tagName[1]);
          if (level > last + 1) { out.push(`heading ${h.tagName} "${h.textContent.trim()}" skips a level`); }
          last = level;
        }
        if (document.documentElement.scrollWidth > window.innerWidth + 1) {
          out.push(`page is ${document.documentElement.scrollWidth}px wide`);
        }
        return out;
      });
      assert.deepEqual(problems, [], path);
    }
    await page.context().close();
  });
}
