/**
 * A real OTLP/HTTP trace receiver: a `node:http` server on 127.0.0.1 that accepts `POST /v1/traces`
 * as an OpenTelemetry collector does (answering 200 with an empty ExportTraceServiceResponse) and keeps
 * every export. JSON exports (`http/json`) are decoded into flat spans; protobuf exports are kept as bytes.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedExport {
  readonly path: string;
  readonly contentType: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export type AttributeValue = string | number | boolean | AttributeValue[] | null;

/** One span of an OTLP JSON export, with its resource's and scope's names beside it. */
export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** Empty for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  /** OTLP's SpanKind: 1 internal, 2 server, 3 client. */
  readonly kind: number;
  readonly attributes: Record<string, AttributeValue>;
  readonly resource: Record<string, AttributeValue>;
  readonly scope: string;
  /** OTLP's status code: 0 unset, 1 ok, 2 error. */
  readonly statusCode: number;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly exports: ReceivedExport[];
  /** Every span of every JSON export received so far. */
  spans(): ReceivedSpan[];
  close(): Promise<void>;
}

export const SPAN_KIND = { internal: 1, server: 2, client: 3 } as const;

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const exports: ReceivedExport[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const contentType = String(request.headers['content-type'] ?? '');
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      exports.push({ path: request.url, contentType, headers: request.headers, body: Buffer.concat(chunks) });
      // An empty ExportTraceServiceResponse: `{}` in JSON, no bytes in protobuf.
      if (contentType.startsWith('application/json')) response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    exports,
    spans: () => exports.filter((received) => received.contentType.startsWith('application/json')).flatMap(spansOf),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function spansOf(received: ReceivedExport): ReceivedSpan[] {
  const request = JSON.parse(received.body.toString('utf8')) as { resourceSpans?: any[] };
  return (request.resourceSpans ?? []).flatMap((resourceSpans) =>
    (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans: any) =>
      (scopeSpans.spans ?? []).map(
        (span: any): ReceivedSpan => ({
          traceId: span.traceId,
          spanId: span.spanId,
          parentSpanId: span.parentSpanId ?? '',
          name: span.name,
          kind: span.kind,
          attributes: attributesOf(span.attributes),
          resource: attributesOf(resourceSpans.resource?.attributes),
          scope: scopeSpans.scope?.name ?? '',
          statusCode: span.status?.code ?? 0,
        }),
      ),
    ),
  );
}

function attributesOf(attributes: Array<{ key: string; value: any }> | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((attributes ?? []).map(({ key, value }) => [key, anyValueOf(value)]));
}

/** OTLP JSON's AnyValue; 64-bit integers may come as strings. */
function anyValueOf(value: any): AttributeValue {
  if (value === undefined || value === null) return null;
  if ('stringValue' in value) return value.stringValue;
  if ('intValue' in value) return Number(value.intValue);
  if ('doubleValue' in value) return Number(value.doubleValue);
  if ('boolValue' in value) return value.boolValue;
  if ('arrayValue' in value) return (value.arrayValue.values ?? []).map(anyValueOf);
  return null;
}
