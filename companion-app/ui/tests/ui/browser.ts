// Shared setup of the UI tests: Vite serving the UI on 127.0.0.1 and Debian's chromium driven by
// playwright-core. Never a downloaded browser: CHROMIUM_PATH or /usr/bin/chromium.

import { existsSync } from "node:fs";
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
