import type { IncomingMessage, ServerResponse } from 'node:http';
import path from 'node:path';
import { projectRoot } from '../project-root';
import { createStaticFiles } from './static-files';

/** Where the page's own files live: in src/web, also when the server runs from dist/. */
const sourceDir = path.join(projectRoot, 'src/web');
const uplotDir = path.dirname(require.resolve('uplot'));

/** Every file the dashboard loads, from this server: uPlot from node_modules, the page's script and styles. */
const assetFiles = {
  'uPlot.iife.min.js': path.join(uplotDir, 'uPlot.iife.min.js'),
  'uPlot.min.css': path.join(uplotDir, 'uPlot.min.css'),
  'dashboard-app.js': path.join(sourceDir, 'dashboard-app.js'),
  'dashboard.css': path.join(sourceDir, 'dashboard.css'),
} as const;

export const dashboardPath = '/dashboard';
export const dashboardAssetPrefix = '/dashboard/';

/** Nothing but this origin: no inline script or style, no other host, and the forms post nowhere (scripts handle them). */
export const dashboardContentSecurityPolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

export interface DashboardSettings {
  readonly version: string;
  /** With API keys on, the page asks for an admin key and sends it as a bearer token. */
  readonly authEnabled: boolean;
}

const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);

const panel = (name: string, title: string, kind: 'chart' | 'table'): string =>
  `<figure class="panel panel-${kind}" data-chart="${name}" data-points="0"><figcaption>${title}</figcaption><div class="panel-body"></div></figure>`;

export function dashboardPage(settings: DashboardSettings): string {
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>LLMOP dashboard</title>
  <link rel="stylesheet" href="${dashboardAssetPrefix}uPlot.min.css">
  <link rel="stylesheet" href="${dashboardAssetPrefix}dashboard.css">
</head>
<body data-auth-enabled="${settings.authEnabled}" data-state="starting">
  <header class="top">
    <h1>LLMOP <span class="subtitle">dashboard</span> <small>${escapeHtml(settings.version)}</small></h1>
    <form id="range-form" class="controls">
      <label>Time range
        <select id="range" name="range">
          <option value="3600">Last hour</option>
          <option value="86400" selected>Last 24 hours</option>
          <option value="604800">Last 7 days</option>
          <option value="2592000">Last 30 days</option>
          <option value="custom">Custom</option>
        </select>
      </label>
      <label>Since <input type="datetime-local" id="since" name="since" step="60"></label>
      <label>Until <input type="datetime-local" id="until" name="until" step="60"></label>
      <button type="submit" id="refresh">Refresh</button>
    </form>
    <form id="key-form" class="controls key"${settings.authEnabled ? '' : ' hidden'}>
      <label>Admin API key <input type="password" id="api-key" name="api-key" autocomplete="off" spellcheck="false" placeholder="kept in this tab only"></label>
      <button type="submit" id="use-key">Use key</button>
      <button type="button" id="forget-key">Forget key</button>
    </form>
    <p id="status" role="status" aria-live="polite"></p>
  </header>
  <main>
    <section class="tiles" aria-label="Totals in the range">
      <div class="tile"><span class="tile-label">Requests</span><span class="tile-value" id="total-requests">–</span></div>
      <div class="tile"><span class="tile-label">Failed</span><span class="tile-value" id="total-failed">–</span></div>
      <div class="tile"><span class="tile-label">Tokens</span><span class="tile-value" id="total-tokens">–</span></div>
      <div class="tile"><span class="tile-label">Spend</span><span class="tile-value" id="total-cost">–</span></div>
      <div class="tile"><span class="tile-label">Bucket</span><span class="tile-value" id="bucket-width">–</span></div>
    </section>
    <h2>Traffic per model</h2>
    <div class="grid">
      ${panel('requests', 'Requests', 'chart')}
      ${panel('errors', 'Failed generations', 'chart')}
      ${panel('latency', 'Latency p50 (solid) and p95 (dashed), ms', 'chart')}
    </div>
    <h2>Tokens</h2>
    <div class="grid">
      ${panel('tokens-model', 'Per model', 'chart')}
      ${panel('tokens-caller', 'Per caller', 'chart')}
      ${panel('tokens-team', 'Per team', 'chart')}
    </div>
    <h2>Spend (USD)</h2>
    <div class="grid">
      ${panel('spend-model', 'Per model', 'chart')}
      ${panel('spend-caller', 'Per caller', 'chart')}
      ${panel('spend-team', 'Per team', 'chart')}
    </div>
    <div class="grid">
      ${panel('budgets', 'Budgets: spent, reserved and limit in the current period', 'table')}
      ${panel('feedback-model', 'Feedback per model', 'table')}
      ${panel('feedback-prompt', 'Feedback per prompt version', 'table')}
    </div>
    <h2>Latest evaluation runs</h2>
    <div class="evaluations">
      ${panel('evaluations', 'Variants side by side (best first)', 'table')}
    </div>
  </main>
  <script src="${dashboardAssetPrefix}uPlot.iife.min.js"></script>
  <script src="${dashboardAssetPrefix}dashboard-app.js"></script>
</body>
</html>
`;
}

/** GET /dashboard and its files: public (the data comes from POST /graphql, with the key the page is given). */
export function createDashboardPages(settings: DashboardSettings) {
  const page = dashboardPage(settings);
  const assets = createStaticFiles(dashboardAssetPrefix, assetFiles);

  return async (request: IncomingMessage, response: ServerResponse, pathname: string): Promise<boolean> => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return false;
    if (pathname === dashboardPath || pathname === dashboardAssetPrefix) {
      response.statusCode = 200;
      response.setHeader('content-type', 'text/html; charset=utf-8');
      response.setHeader('content-security-policy', dashboardContentSecurityPolicy);
      response.setHeader('x-content-type-options', 'nosniff');
      response.setHeader('referrer-policy', 'no-referrer');
      response.setHeader('cache-control', 'no-store');
      response.end(page);
      return true;
    }
    return assets(response, pathname);
  };
}
