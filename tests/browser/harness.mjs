// Shared pieces of the dashboard's browser tests: a real demo server in its own process, real
// phones (core's replica behind the `field_phone` example), Debian's Chromium through
// playwright-core, and the JSON API for checking what the pages show.
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import net from "node:net";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "..", "..");
const target = process.env.CARGO_TARGET_DIR || join(root, "target");
export const SERVER_BIN = process.env.DOORSTEP_SERVER_BIN || join(target, "debug", "doorstep-server");
export const PHONE_BIN = process.env.DOORSTEP_PHONE_BIN || join(target, "debug", "examples", "field_phone");
export const ADMIN_PASSWORD = "browser-test-passphrase-1";
export const CAMPAIGN = "election-2025";
export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

async function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Start `doorstep-server demo` on a fresh database; resolves once it printed its logins. */
export async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), "doorstep-browser-"));
  const port = await freePort();
  const child = spawn(SERVER_BIN, ["demo", "--db", join(dir, "demo.sqlite"), "--listen", `127.0.0.1:${port}`], {
    env: { ...process.env, DOORSTEP_ADMIN_PASSWORD: ADMIN_PASSWORD, RUST_LOG: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  child.stderr.on("data", (d) => { err += d; });
  const codes = {};
  let officerPassword = null;
  await new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`server did not start: ${out}\n${err}`)), 60000);
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`server exited ${code}: ${err}`)); });
    child.stdout.on("data", (d) => {
      out += d;
      for (const m of out.matchAll(/building\s+(\d+)\s+\S+\s+([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})/g)) {
        codes[m[1]] = m[2];
      }
      const officer = out.match(/counting officer: login "officer", password \(shown once\): (\S+)/);
      if (officer) { officerPassword = officer[1]; }
      if (Object.keys(codes).length === 11) { clearTimeout(timer); ok(); }
    });
  });
  const base = `http://127.0.0.1:${port}`;
  // Wait until it answers.
  for (let i = 0; i < 100; i++) {
    try { if ((await fetch(`${base}/healthz`)).ok) { break; } } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base, dir, codes, officerPassword, child,
    stop() { child.kill("SIGTERM"); },
  };
}

/** JSON API call; returns { status, body }. */
export async function api(server, method, path, token, body) {
  const res = await fetch(server.base + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: json, text, headers: res.headers };
}

export async function token(server, login, password) {
  const r = await api(server, "POST", "/api/v1/auth/login", null, { login, password });
  if (r.status !== 200) { throw new Error(`login ${login}: ${r.text}`); }
  return r.body.token;
}

/** An account with a password, assigned to `building` when given. */
export async function createAccount(server, adminToken, { login, name, roles, password, building }) {
  const r = await api(server, "POST", "/api/v1/admin/accounts", adminToken,
    { login, display_name: name, roles, password });
  if (r.status !== 201 && r.status !== 200) { throw new Error(`create ${login}: ${r.text}`); }
  if (building) {
    const a = await api(server, "POST", "/api/v1/admin/assignments", adminToken,
      { account_id: r.body.id, community: "tpy", building });
    if (a.status >= 300) { throw new Error(`assign ${login}: ${a.text}`); }
  }
  return r.body;
}

/** A phone: one store file driven through the `field_phone` example. */
export class Phone {
  constructor(dir, name) { this.store = join(dir, `${name}.sqlite`); }
  run(...args) {
    try {
      return JSON.parse(execFileSync(PHONE_BIN, [this.store, ...args], { encoding: "utf8" }));
    } catch (e) {
      const out = e.stdout ? JSON.parse(e.stdout) : { error: String(e) };
      throw new Error(`phone ${args.join(" ")}: ${out.error}`);
    }
  }
  static enroll(server, name, code) {
    const p = new Phone(server.dir, name);
    p.run("enroll", server.base, code, name);
    return p;
  }
}

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A logged-in browser page. */
export async function loggedIn(browser, server, login, password, viewport = { width: 1280, height: 800 }) {
  const context = await browser.newContext({ viewport, locale: "zh-CN", timezoneId: "Asia/Shanghai" });
  const page = await context.newPage();
  await page.goto(`${server.base}/login`);
  await page.fill("#login", login);
  await page.fill("#password", password);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  return page;
}

/** Every effective number of the tally API, for comparing with pages. */
export async function tally(server, adminToken) {
  const r = await api(server, "GET", `/api/v1/admin/campaigns/${CAMPAIGN}/tally`, adminToken);
  if (r.status !== 200) { throw new Error(r.text); }
  return r.body;
}

/** m² with two decimals, from 0.01 m². */
export function m2(area) {
  const sign = area < 0 ? "-" : "";
  const a = Math.abs(area);
  return `${sign}${Math.floor(a / 100)}.${String(a % 100).padStart(2, "0")}`;
}
