import { sendJsonError } from '../http/json-error';
import type { MetricsHandler } from '../server';
import type { GatewayMetrics } from './metrics';

/**
 * GET /metrics, Prometheus' text format. With API keys on, only an admin may scrape (no key: 401; a
 * member's: 403), unless METRICS_PUBLIC=true lets a scraper without a key in.
 */
export function createMetricsHandler(metrics: GatewayMetrics, options: { readonly public: boolean }): MetricsHandler {
  return async (request, response, authentication) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      return sendJsonError(response, 405, 'method_not_allowed', `${request.method ?? ''} is not allowed on /metrics`, 'allowed: GET');
    }
    if (!options.public) {
      if (!authentication.ok) {
        response.setHeader('www-authenticate', 'Bearer realm="llmop"');
        const message = authentication.reason === 'missing' ? 'An API key is required' : 'The API key is not valid';
        return sendJsonError(response, 401, 'unauthorized', message, 'send Authorization: Bearer <admin key>, or set METRICS_PUBLIC=true');
      }
      if (authentication.caller.role !== 'admin') {
        return sendJsonError(response, 403, 'forbidden', 'Metrics are read by admins', 'use an admin key, or set METRICS_PUBLIC=true');
      }
    }
    const body = await metrics.render();
    response.statusCode = 200;
    response.setHeader('content-type', metrics.contentType);
    response.setHeader('cache-control', 'no-store');
    response.end(request.method === 'HEAD' ? undefined : body);
  };
}
