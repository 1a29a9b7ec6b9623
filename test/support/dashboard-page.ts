import type { Page } from 'playwright-core';

/** Waits until the dashboard page has finished a load begun after its `before`-th (the page counts them in `llmopDashboard.loads`). */
export async function waitForDashboardLoad(page: Page, before: number): Promise<void> {
  await page.waitForFunction(
    (loads) =>
      (window as unknown as { llmopDashboard: { loads: number } }).llmopDashboard.loads > loads && document.body.dataset.state === 'ready',
    before,
    { timeout: 20_000 },
  );
}
