import type { Page } from 'playwright-core';
import { type Browser, openBrowser, saveScreenshot } from '../support/chromium';
import { startGateway, type RunningGateway } from '../support/start-gateway';

/** Clicks run; with several operations in the editor GraphiQL asks which one. */
async function runOperation(page: Page, operation: string): Promise<string> {
  await page.locator('.graphiql-execute-button').click();
  const choice = page.getByRole('menuitem', { name: operation });
  if (await choice.isVisible({ timeout: 2000 }).catch(() => false)) await choice.click();
  const result = page.locator('.result-window');
  await result.getByText('"data"').or(result.getByText('"errors"')).first().waitFor({ timeout: 15000 });
  // biome-ignore lint/performance/useDomNodeTextContent: a Playwright locator, not a DOM node; innerText is what a person sees
  return (await result.innerText()).replace(/\s+/g, ' ');
}

describe('GraphiQL in a real browser, offline', () => {
  let gateway: RunningGateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await startGateway();
    browser = await openBrowser({ width: 1280, height: 800 });
  }, 60000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('renders GraphiQL from /graphql, runs the example query, and shows the result', async () => {
    const { page, requested } = browser;
    await page.goto(`${gateway.url}/graphql`);
    await page.locator('.graphiql-container').waitFor({ timeout: 20000 });
    await page.getByText('query Overview').first().waitFor();
    const text = await runOperation(page, 'Overview');
    expect(text).toContain('"status": "healthy"');
    expect(text).toContain('"count":');
    expect(text).toContain('"id": "gpt-4o"');

    await saveScreenshot(page, 'graphiql.png');

    const foreign = requested.filter((url) => new URL(url).hostname !== '127.0.0.1');
    expect(foreign).toEqual([]);
    expect(requested.some((url) => url.endsWith('/graphiql/graphiql.min.js'))).toBe(true);
  }, 60000);

  it('runs the example usage query against the ledger', async () => {
    const text = await runOperation(browser.page, 'Spend');
    expect(text).toContain('"group_by": "model"');
    expect(text).toContain('"totals":');
    expect(text).not.toContain('"errors"');
  }, 30000);

  it('shows the schema descriptions in the docs explorer', async () => {
    const { page } = browser;
    await page.locator('[aria-label="Show Documentation Explorer"]').click();
    await page.locator('.graphiql-doc-explorer').getByText('Query', { exact: true }).first().click();
    await page.getByText('Basic liveness check of the service.').first().waitFor({ timeout: 10000 });
  }, 30000);

  it('serves a landing page that links GraphiQL, the OpenAPI document and health', async () => {
    const { page } = browser;
    await page.goto(`${gateway.url}/`);
    const links = await page.locator('a').evaluateAll((anchors) => anchors.map((anchor) => anchor.getAttribute('href')));
    expect(links).toEqual(expect.arrayContaining(['/graphql', '/api/v1/openapi.json', '/api/v1/health']));
  });
});

describe('GraphiQL with API keys on', () => {
  const key = 'graphiql-key-0123456789abcdef';
  let gateway: RunningGateway;
  let browser: Browser;

  beforeAll(async () => {
    gateway = await startGateway({ env: { API_KEYS: key } });
    browser = await openBrowser({ width: 1280, height: 800 });
  }, 60000);

  afterAll(async () => {
    await browser?.close();
    await gateway?.close();
  });

  it('loads without a key and works once the Authorization header is set in the headers tab', async () => {
    const { page, requested } = browser;
    await page.goto(`${gateway.url}/graphql`);
    await page.locator('.graphiql-container').waitFor({ timeout: 20000 });

    const refused = await runOperation(page, 'Overview');
    expect(refused).toContain('"code": "unauthorized"');

    const headersEditor = page.locator('.graphiql-editor-tool .graphiql-editor').last();
    await page.getByRole('button', { name: 'Headers', exact: true }).click();
    await headersEditor.click();
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Backspace');
    await page.keyboard.type(`{"Authorization": "Bearer ${key}"}`);
    const answered = await runOperation(page, 'Overview');
    expect(answered).toContain('"status": "healthy"');
    expect(requested.filter((url) => new URL(url).hostname !== '127.0.0.1')).toEqual([]);
  }, 60000);
});
