// Developer helper: screenshot dashboard pages. node shot.mjs URL-PATH OUT.png [WIDTHxHEIGHT]
import { chromium } from "playwright-core";
const [path, out, size = "1280x800"] = process.argv.slice(2);
const [width, height] = size.split("x").map(Number);
const base = process.env.BASE || "http://127.0.0.1:8080";
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"] });
const page = await browser.newPage({ viewport: { width, height } });
await page.goto(base + "/login");
await page.fill("#login", process.env.LOGIN || "admin");
await page.fill("#password", process.env.PASSWORD || "demo-password-1");
await page.click("button[type=submit]");
await page.goto(base + path);
await page.waitForTimeout(500);
await page.screenshot({ path: out, fullPage: true });
await browser.close();
