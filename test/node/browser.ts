// The headless Chromium the browser tests drive: CHROMIUM_PATH when set, else the
// system's (Debian's /usr/bin/chromium) when there is one, else the Chromium that the
// @sparticuz/chromium npm package ships inside itself, so `npm ci && npm test` needs no
// apt on a fresh machine. playwright-core never downloads a browser.

import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import type { Browser } from "playwright-core";

const SYSTEM_CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

export async function chromiumPath(): Promise<string> {
  const explicit = process.env.CHROMIUM_PATH;
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`CHROMIUM_PATH is ${explicit}, and there is no file there.`);
    return explicit;
  }
  const system = SYSTEM_CHROMIUM.find((p) => existsSync(p));
  if (system) return system;
  // The package unpacks its brotli-compressed binary into the temp folder on first use.
  const { default: packaged } = await import("@sparticuz/chromium");
  return packaged.executablePath();
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: await chromiumPath(),
    headless: true,
    // A fixed locale: under LANG=C.UTF-8 the npm Chromium's default locale is "en-US@posix",
    // which its own Intl then refuses ("Invalid language tag"), and uPlot's date axes throw.
    env: { ...process.env, LANG: "en_US.UTF-8", LC_ALL: "en_US.UTF-8" },
    args: [
      "--lang=en-US",
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
