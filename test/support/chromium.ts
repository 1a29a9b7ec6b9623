import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

// The flags this workplace's closed network needs: no background traffic, no first-run pages.
const chromiumFlags = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where browser tests leave their screenshots (gitignored; CI keeps them as artefacts). */
export const artifactsDir = path.resolve(__dirname, '../../artifacts');

export async function saveScreenshot(page: Page, name: string): Promise<void> {
  await mkdir(artifactsDir, { recursive: true });
  await page.screenshot({ path: path.join(artifactsDir, name), fullPage: true });
}

export interface Browser {
  readonly context: BrowserContext;
  readonly page: Page;
  /** Every URL the browser asked for, in order. */
  readonly requested: string[];
  close(): Promise<void>;
}

/** Headless Chromium (/usr/bin/chromium) with a fresh temporary profile, removed on close. */
export async function openBrowser(viewport: { readonly width: number; readonly height: number }): Promise<Browser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'llmop-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: chromiumFlags,
    viewport,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const requested: string[] = [];
  context.on('request', (request) => requested.push(request.url()));
  return {
    context,
    page,
    requested,
    close: async () => {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}
