// Shared setup of the UI tests: Vite serving the UI on 127.0.0.1 and Debian's chromium driven by
// playwright-core. Never a downloaded browser: CHROMIUM_PATH or /usr/bin/chromium.

import { existsSync, mkdirSync } from "node:fs";
import { afterAll, beforeAll } from "vitest";
import { fileURLToPath } from "node:url";
import { createServer, type ViteDevServer } from "vite";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import type { PairingEvent, SpeakersView, SpeakerView } from "../../src/ipc";
import type { MockBackend, Scenario } from "./harness";

const UI_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

export interface Harness {
  server: ViteDevServer;
  browser: Browser;
  base: string;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium) or set CHROMIUM_PATH`);
  }
  const server = await createServer({
    root: UI_ROOT,
    configFile: false,
    logLevel: "error",
    clearScreen: false,
    server: { host: "127.0.0.1", port: 0, strictPort: false, hmr: false },
    optimizeDeps: { include: ["@tauri-apps/api/mocks", "@tauri-apps/api/event", "@tauri-apps/api/core"] },
  });
  await server.listen();
  const addr = server.httpServer?.address();
  if (!addr || typeof addr === "string") throw new Error("vite did not listen on a TCP port");
  const base = `http://127.0.0.1:${addr.port}`;
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 30_000,
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
  return {
    server,
    browser,
    base,
    async close() {
      await browser.close().catch(() => {});
      await server.close().catch(() => {});
    },
  };
}

export interface OpenOptions {
  scenario?: Scenario;
  width?: number;
  height?: number;
  /** Browser zoom, emulated as the smaller CSS viewport it produces. */
  zoom?: number;
}

export async function openApp(h: Harness, opts: OpenOptions = {}): Promise<{ page: Page; context: BrowserContext }> {
  const zoom = opts.zoom ?? 1;
  const context = await h.browser.newContext({
    viewport: { width: Math.round((opts.width ?? 920) / zoom), height: Math.round((opts.height ?? 760) / zoom) },
    deviceScaleFactor: zoom,
    reducedMotion: "reduce",
    permissions: ["clipboard-read", "clipboard-write"],
  });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  (page as Page & { errors: string[] }).errors = errors;
  await page.addInitScript((s) => {
    (window as unknown as { __scenario: unknown }).__scenario = s;
  }, opts.scenario ?? {});
  await page.goto(`${h.base}/tests/ui/harness.html`);
  await page.waitForSelector("#screen[data-screen]");
  await page.waitForFunction(() => window.mock && window.mock.commands().includes("start_discovery"));
  return { page, context };
}

export function pageErrors(page: Page): string[] {
  return (page as Page & { errors: string[] }).errors;
}

export const livingRoom: SpeakerView = {
  id: "a1b2c3d4",
  name: "Living room speaker",
  transports: ["wifi"],
  address: "192.168.1.23:4100",
  paired: false,
  window: "open",
  lastSeenMs: Date.now(),
  live: true,
  needsNetwork: false,
};

export const kitchen: SpeakerView = {
  id: "e5f6a7b8",
  name: "Kitchen",
  transports: ["wifi", "ble"],
  address: "192.168.1.40:4100",
  paired: true,
  window: "closed",
  lastSeenMs: Date.now() - 95_000,
  live: false,
  needsNetwork: false,
};

export function listOf(...speakers: SpeakerView[]): SpeakersView {
  return { discovery: "searching", message: null, speakers };
}

export async function emitSpeakers(page: Page, view: SpeakersView): Promise<void> {
  await page.evaluate((v) => window.mock.emitSpeakers(v), view);
}

export async function emitPairing(page: Page, ...events: PairingEvent[]): Promise<void> {
  for (const ev of events) await page.evaluate((e) => window.mock.emitPairing(e), ev);
}

export async function calls(page: Page): Promise<MockBackend["calls"]> {
  return page.evaluate(() => window.mock.calls);
}

export function stage(pairingId: number, stage: PairingEvent & { type: "stage" } extends infer S ? (S extends { stage: infer X } ? X : never) : never, state: "active" | "done", detail: string | null = null): PairingEvent {
  return { type: "stage", pairingId, stage, state, detail, millis: state === "done" ? 42 : null };
}

/** Waits for two animation frames, so a screenshot shows the latest layout. */
export async function settle(page: Page): Promise<void> {
  await page.evaluate(() => new Promise<void>((r) => requestAnimationFrame(() => requestAnimationFrame(() => r()))));
}

/** Where the tests' pictures land (the docs copy some of them by hand). */
export const SHOTS = new URL("../../test-results/", import.meta.url).pathname;

/**
 * One harness for the calling test file: started before its tests, closed after them. Call it
 * at the top level of the file; the function it returns gives the harness inside a test.
 */
export function harnessPerFile(): () => Harness {
  let h: Harness | undefined;
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    h = await startHarness();
  });
  afterAll(async () => {
    await h?.close();
  });
  return () => {
    if (!h) throw new Error("the harness did not start (see the beforeAll error above)");
    return h;
  };
}

/** A full-page picture of `page` once it has settled, as test-results/<name>.png. */
export async function shot(page: Page, name: string): Promise<void> {
  await settle(page);
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
}
