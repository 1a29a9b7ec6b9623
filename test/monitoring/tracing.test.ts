/**
 * Issue 17's traces: the built gateway runs as a real process with OTEL_EXPORTER_OTLP_ENDPOINT pointing
 * at a real OTLP/HTTP receiver started here, in front of the fake OpenAI-compatible upstream. A REST and
 * a GraphQL generate arrive with a `traceparent`; SIGTERM makes the gateway flush its spans; then the
 * receiver must hold, in each incoming trace, the HTTP server span (continuing the caller's span), the
 * GraphQL operation, the generation (GenAI attributes) and the upstream call, whose request carried a
 * `traceparent` of the same trace. Without the endpoint, nothing of the SDK is loaded.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig } from '../../src/config';
import { expectedReply, startFakeUpstream, type FakeUpstream, type RecordedRequest } from '../support/fake-openai-upstream';
import { poll } from '../support/polling';
import { spawnServer } from '../support/spawn-server';
import { SPAN_KIND, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from './otlp-receiver';

const MODEL = 'compat-chat';
const ENDPOINT = 'vllm-east';
const catalog = {
  endpoints: [{ name: ENDPOINT, base_url: '' }],
  models: [{ id: MODEL, provider: ENDPOINT, api: 'chat', context_length: 4096 }],
};
/** As start-gateway's writeTempCatalog, without loading the app into this process (the gateway runs in its own). */
const catalogFor = (fake: FakeUpstream): string => {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-catalog-')), 'catalog.json');
  writeFileSync(file, JSON.stringify({ ...catalog, endpoints: [{ name: ENDPOINT, base_url: fake.url }] }));
  return file;
};

/** The callers' own traces: each request continues one. */
const callers = {
  rest: { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', prompt: 'tell me about rivers and lakes' },
  graphql: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', prompt: 'say something about mountains' },
} as const;
const INVALID_PROMPT = 'my secret prompt in a list';
const invalidCaller = { traceId: '5d9a2c7e1b3f4a6c8e0d2b4f6a8c0e1d', spanId: '3c5e7a9b1d2f4a6c' };
const openAIStream = { traceId: 'f2c8f1e0a3b94c5d8e7f6a5b4c3d2e1f', spanId: '1a2b3c4d5e6f7a8b', prompt: 'stream a line about the sea' };
/** Starts an evaluation: its cells run long after the request, outside its trace. */
const evaluationCaller = { traceId: '9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b', spanId: '2b3c4d5e6f7a8b9c' };
const SEED = 42;
const traceparent = (caller: { traceId: string; spanId: string }): string => `00-${caller.traceId}-${caller.spanId}-01`;
const PARAMETERS = { max_tokens: 4, temperature: 0.3, top_p: 0.9 };

const quietEnv = (fake: FakeUpstream): Record<string, string> => ({
  MODEL_CATALOG: catalogFor(fake),
  MODELS_DIR: mkdtempSync(path.join(os.tmpdir(), 'llmop-models-')),
  ACCESS_LOG: 'off',
  UPSTREAM_MAX_RETRIES: '0',
});

describe('OpenTelemetry traces over OTLP/HTTP (JSON)', () => {
  let receiver: OtlpReceiver;
  let fake: FakeUpstream;
  let exitCode: number | string;
  let output: string;
  let evaluationId: string;
  const answers: Record<keyof typeof callers, { generation_id: string; request_id: string }> = {} as never;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    fake = await startFakeUpstream({ models: [MODEL] });
    const server = spawnServer({
      ...quietEnv(fake),
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'llmop-under-test',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-token=t0ken%2Fsecret',
    });
    const url = await server.listening;

    const rest = await fetch(`${url}/api/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: traceparent(callers.rest) },
      body: JSON.stringify({ model_id: MODEL, prompt: callers.rest.prompt, ...PARAMETERS, seed: SEED }),
    });
    expect(rest.status).toBe(200);
    answers.rest = ((await rest.json()) as { metadata: { generation_id: string; request_id: string } }).metadata;

    const graphql = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: traceparent(callers.graphql) },
      body: JSON.stringify({
        // The prompt inline in the document: the operation's spans quote the document with its values masked.
        query: `mutation Ask {
          generate(model_id: "${MODEL}", prompt: "${callers.graphql.prompt}", max_tokens: ${PARAMETERS.max_tokens}, temperature: ${PARAMETERS.temperature}, top_p: ${PARAMETERS.top_p}) {
            text metadata { generation_id request_id }
          }
        }`,
        operationName: 'Ask',
      }),
    });
    const body = (await graphql.json()) as {
      data?: { generate: { metadata: { generation_id: string; request_id: string } } };
      errors?: unknown;
    };
    expect(body.errors).toBeUndefined();
    answers.graphql = body.data!.generate.metadata;

    // The OpenAI-compatible route, streaming: no GraphQL, a generation recorded when the stream ends.
    const chat = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: traceparent(openAIStream) },
      body: JSON.stringify({ model: MODEL, messages: [{ role: 'user', content: openAIStream.prompt }], max_tokens: 3, stream: true }),
    });
    expect(chat.status).toBe(200);
    expect(await chat.text()).toContain('data: [DONE]');

    // A prompt written into an invalid document: graphql-js's validation message quotes it.
    const invalid = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: traceparent(invalidCaller) },
      body: JSON.stringify({ query: `mutation { generate(model_id: "${MODEL}", prompt: ["${INVALID_PROMPT}"]) { text } }` }),
    });
    expect(invalid.status).toBe(400);

    // An evaluation of two cases, started with a traceparent; it runs to the end before the gateway stops.
    const post = async (route: string, body: unknown, headers: Record<string, string> = {}): Promise<{ id: string }> => {
      const response = await fetch(`${url}/api/v1${route}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      expect([route, response.status]).toEqual([route, route === '/evaluations' ? 202 : 201]);
      return (await response.json()) as { id: string };
    };
    await post('/prompts', { name: 'echo', template: 'Repeat {{word}}', model_id: MODEL });
    const dataset = await post('/datasets', { name: 'words', items: [{ variables: { word: 'oak' } }, { variables: { word: 'elm' } }] });
    const evaluation = await post(
      '/evaluations',
      { dataset_id: dataset.id, prompts: [{ name: 'echo' }], model_ids: [MODEL], scorers: [{ type: 'similarity' }], max_tokens: 3 },
      { traceparent: traceparent(evaluationCaller) },
    );
    evaluationId = evaluation.id;
    await poll(
      async () => ((await (await fetch(`${url}/api/v1/evaluations/${evaluation.id}`)).json()) as { status: string }).status,
      (status) => status === 'succeeded',
    );

    // A probe: not traced.
    expect((await fetch(`${url}/api/v1/health`)).status).toBe(200);

    server.child.kill('SIGTERM');
    exitCode = await server.exited;
    output = server.output();
  }, 60_000);

  afterAll(async () => {
    await fake?.close();
    await receiver?.close();
  });

  const spansOf = (traceId: string): ReceivedSpan[] => receiver.spans().filter((span) => span.traceId === traceId);
  const upstreamRequestOf = (prompt: string): RecordedRequest => {
    const request = fake.requests.find(
      (candidate) => candidate.path === '/v1/chat/completions' && JSON.stringify(candidate.body).includes(prompt),
    );
    if (!request) throw new Error(`no upstream request for "${prompt}"`);
    return request;
  };

  it('exits cleanly on SIGTERM after exporting the spans, as OTLP JSON to /v1/traces', () => {
    expect(exitCode).toBe(0);
    expect(output).toContain('exporting traces over OTLP');
    expect(receiver.exports.length).toBeGreaterThan(0);
    expect(receiver.exports.every((received) => received.contentType.startsWith('application/json'))).toBe(true);
    // OTEL_EXPORTER_OTLP_HEADERS goes with every export, never into the log.
    expect(receiver.exports.every((received) => received.headers['x-collector-token'] === 't0ken/secret')).toBe(true);
    expect(output).not.toContain('t0ken');
    const spans = receiver.spans();
    expect(spans.length).toBeGreaterThan(0);
    for (const span of spans) {
      expect(span.resource['service.name']).toBe('llmop-under-test');
      expect(span.resource['service.version']).toEqual(expect.any(String));
    }
  });

  it.each(Object.keys(callers) as Array<keyof typeof callers>)(
    '%s: the HTTP server span continues the incoming trace; the generation and the upstream call are in it',
    (surface) => {
      const caller = callers[surface];
      const spans = spansOf(caller.traceId);

      // The request's span: the caller's span is its parent.
      const serverSpans = spans.filter((span) => span.kind === SPAN_KIND.server);
      expect(serverSpans).toHaveLength(1);
      const serverSpan = serverSpans[0]!;
      expect(serverSpan.parentSpanId).toBe(caller.spanId);
      expect(serverSpan.scope).toBe('@opentelemetry/instrumentation-http');
      expect(serverSpan.attributes['http.request.method'] ?? serverSpan.attributes['http.method']).toBe('POST');
      expect(serverSpan.attributes['http.response.status_code'] ?? serverSpan.attributes['http.status_code']).toBe(200);

      // The GraphQL operation (REST runs the same one), and its root field's resolver, where the generation runs.
      const graphqlSpans = spans.filter((span) => span.scope === '@opentelemetry/instrumentation-graphql');
      const operation = graphqlSpans.find((span) => span.attributes['graphql.operation.type'] === 'mutation');
      expect(operation?.parentSpanId).toBe(serverSpan.spanId);
      if (surface === 'graphql') {
        expect(operation?.name).toBe('mutation Ask');
        expect(graphqlSpans.map((span) => span.name)).toEqual(expect.arrayContaining(['graphql.parse', 'graphql.validate']));
      }
      const resolver = graphqlSpans.find((span) => span.name === 'graphql.resolve generate');
      expect(resolver?.parentSpanId).toBe(operation?.spanId);

      // The generation, with the GenAI semantic conventions.
      const generations = spans.filter((span) => span.attributes['gen_ai.operation.name'] !== undefined);
      expect(generations).toHaveLength(1);
      const generation = generations[0]!;
      const reply = expectedReply(caller.prompt, PARAMETERS.max_tokens);
      expect(generation.attributes).toMatchObject({
        // The conventions name the API spoken: an OpenAI-compatible server is `openai`; the endpoint is LLMOP's own attribute.
        'gen_ai.provider.name': 'openai',
        'llmop.endpoint': ENDPOINT,
        'llmop.in_ledger': true,
        'gen_ai.request.model': MODEL,
        'gen_ai.response.model': MODEL,
        'gen_ai.usage.input_tokens': reply.promptTokens,
        'gen_ai.usage.output_tokens': reply.completionTokens,
        'gen_ai.request.max_tokens': PARAMETERS.max_tokens,
        'gen_ai.request.temperature': PARAMETERS.temperature,
        'gen_ai.request.top_p': PARAMETERS.top_p,
        'gen_ai.response.finish_reasons': [reply.finishReason],
        'llmop.generation_id': answers[surface].generation_id,
        'llmop.request_id': answers[surface].request_id,
      });
      expect(generation.attributes['gen_ai.request.seed']).toBe(surface === 'rest' ? SEED : undefined);
      expect(['chat', 'text_completion']).toContain(generation.attributes['gen_ai.operation.name']);
      expect(generation.name).toBe(`${generation.attributes['gen_ai.operation.name']} ${MODEL}`);
      expect(generation.kind).toBe(SPAN_KIND.client);
      expect(generation.statusCode).not.toBe(2);
      expect(generation.parentSpanId).toBe(resolver?.spanId);

      // The upstream call: a client span from the undici instrumentation, whose request carried a
      // `traceparent` of the same trace naming that span as the parent.
      const upstream = upstreamRequestOf(caller.prompt);
      const header = String(upstream.headers.traceparent ?? '');
      expect(header).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const [, traceId, parentId] = header.split('-');
      expect(traceId).toBe(caller.traceId);
      const upstreamSpan = spans.find((span) => span.spanId === parentId);
      expect(upstreamSpan?.parentSpanId).toBe(resolver?.spanId);
      expect(upstreamSpan).toMatchObject({
        kind: SPAN_KIND.client,
        scope: '@opentelemetry/instrumentation-undici',
        attributes: expect.objectContaining({ 'url.full': `${fake.url}/chat/completions`, 'http.response.status_code': 200 }),
      });
    },
  );

  it('the OpenAI-compatible route, streaming: the request, the generation (chat) and the upstream call in the incoming trace', () => {
    const spans = spansOf(openAIStream.traceId);
    const serverSpan = spans.find((span) => span.kind === SPAN_KIND.server);
    expect(serverSpan?.parentSpanId).toBe(openAIStream.spanId);
    const generation = spans.find((span) => span.attributes['gen_ai.operation.name'] !== undefined);
    expect(generation?.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': MODEL,
      'gen_ai.usage.output_tokens': 3,
      'llmop.source': 'openai',
    });
    const header = String(upstreamRequestOf(openAIStream.prompt).headers.traceparent ?? '');
    expect(header.split('-')[1]).toBe(openAIStream.traceId);
    expect(spans.find((span) => span.spanId === header.split('-')[2])?.scope).toBe('@opentelemetry/instrumentation-undici');
  });

  it("an evaluation's cells are traced outside the trace of the request that started it, which ends with its answer", () => {
    const requestSpans = spansOf(evaluationCaller.traceId);
    expect(requestSpans.filter((span) => span.kind === SPAN_KIND.server)).toHaveLength(1);
    expect(requestSpans.filter((span) => span.attributes['gen_ai.operation.name'] !== undefined)).toEqual([]);
    expect(requestSpans.filter((span) => span.scope === '@opentelemetry/instrumentation-undici')).toEqual([]);
    // Each case is a trace of its own: a root span, its generation and the generation's upstream call.
    const cases = receiver.spans().filter((span) => span.name === 'evaluation case');
    expect(cases.map((span) => span.attributes['llmop.evaluation.item_index']).sort()).toEqual([0, 1]);
    for (const root of cases) {
      expect(root.parentSpanId).toBe('');
      expect(root.attributes['llmop.evaluation_id']).toBe(evaluationId);
      const generations = spansOf(root.traceId).filter((span) => span.attributes['llmop.source'] === 'evaluation');
      expect(generations).toHaveLength(1);
      expect(generations[0]!.parentSpanId).toBe(root.spanId);
      const upstream = spansOf(root.traceId).filter((span) => span.scope === '@opentelemetry/instrumentation-undici');
      expect(upstream).toHaveLength(1);
    }
    expect(new Set(cases.map((span) => span.traceId)).size).toBe(2);
  });

  it('puts neither a prompt nor a generated text in any span', () => {
    const exported = receiver.exports.map((received) => received.body.toString('utf8')).join('\n');
    expect(exported).not.toContain(openAIStream.prompt);
    // Nor a prompt an invalid document quoted in its validation error (the span keeps the error's type).
    expect(exported).not.toContain(INVALID_PROMPT);
    expect(exported).toContain('graphql.validate');
    for (const caller of Object.values(callers)) {
      expect(exported).not.toContain(caller.prompt);
      expect(exported).not.toContain(expectedReply(caller.prompt, PARAMETERS.max_tokens).text);
    }
  });

  it('traces neither probes nor the model discovery that runs outside any request', () => {
    expect(fake.requests.some((request) => request.path === '/v1/models')).toBe(true);
    const spans = receiver.spans();
    expect(spans.some((span) => String(span.attributes['url.path'] ?? span.attributes['http.target'] ?? '').includes('/health'))).toBe(
      false,
    );
    expect(spans.some((span) => String(span.attributes['url.full'] ?? '').endsWith('/models'))).toBe(false);
    // Only the requests' traces (the callers' and those without a traceparent) and the evaluation cases': nothing else started one.
    const roots = spans.filter((span) => span.parentSpanId === '' || !spans.some((other) => other.spanId === span.parentSpanId));
    for (const root of roots) {
      expect([root.name, root.kind === SPAN_KIND.server || root.name === 'evaluation case']).toEqual([root.name, true]);
    }
    for (const caller of [...Object.values(callers), openAIStream, invalidCaller, evaluationCaller]) {
      expect(spans.some((span) => span.traceId === caller.traceId)).toBe(true);
    }
  });
});

describe('OpenTelemetry traces over OTLP/HTTP (protobuf, the default)', () => {
  it('exports protobuf to /v1/traces with the GenAI attributes, and a request without a traceparent starts a trace', async () => {
    const receiver = await startOtlpReceiver();
    const fake = await startFakeUpstream({ models: [MODEL] });
    try {
      const server = spawnServer({ ...quietEnv(fake), OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/` });
      const url = await server.listening;
      const response = await fetch(`${url}/api/v1/generate`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model_id: MODEL, prompt: 'a fresh trace please', ...PARAMETERS }),
      });
      expect(response.status).toBe(200);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);

      expect(receiver.exports.length).toBeGreaterThan(0);
      expect(receiver.exports.every((received) => received.contentType === 'application/x-protobuf')).toBe(true);
      const body = Buffer.concat(receiver.exports.map((received) => received.body));
      // Protobuf carries attribute keys as plain strings and ids as raw bytes.
      for (const key of ['gen_ai.operation.name', 'gen_ai.usage.input_tokens', 'gen_ai.usage.output_tokens', 'gen_ai.request.model']) {
        expect(body.includes(Buffer.from(key))).toBe(true);
      }
      const header = String(fake.requests.find((request) => request.path === '/v1/chat/completions')?.headers.traceparent ?? '');
      expect(header).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      expect(body.includes(Buffer.from(header.split('-')[1]!, 'hex'))).toBe(true);
    } finally {
      await fake.close();
      await receiver.close();
    }
  }, 60_000);
});

describe('without OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  /** Runs the built server (dist/src/start.js) in a process that lists, as it exits, the OpenTelemetry packages it loaded. */
  async function openTelemetryPackagesLoaded(env: Record<string, string>, fake: FakeUpstream): Promise<string[]> {
    const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-loaded-'));
    const listFile = path.join(directory, 'loaded.json');
    const probe = path.join(directory, 'list-loaded.js');
    writeFileSync(
      probe,
      `process.on('exit', () => {
        const loaded = Object.keys(require.cache)
          .map((file) => /\\/node_modules\\/(@opentelemetry\\/[^/]+)\\//.exec(file)?.[1])
          .filter(Boolean);
        require('node:fs').writeFileSync(${JSON.stringify(listFile)}, JSON.stringify([...new Set(loaded)].sort()));
      });`,
    );
    const server = spawnServer({ ...quietEnv(fake), ...env }, ['--require', probe]);
    const url = await server.listening;
    // A generation, so what a request loads lazily is loaded too.
    const response = await fetch(`${url}/api/v1/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', traceparent: traceparent(callers.rest) },
      body: JSON.stringify({ model_id: MODEL, prompt: 'anything at all', max_tokens: 2 }),
    });
    expect(response.status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    return JSON.parse(readFileSync(listFile, 'utf8')) as string[];
  }

  let fake: FakeUpstream;
  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL] });
  });
  afterAll(() => fake.close());

  it('loads no OpenTelemetry SDK package, no instrumentation and no exporter: only the API', async () => {
    const loaded = await openTelemetryPackagesLoaded({}, fake);
    expect(loaded).toEqual(['@opentelemetry/api']);
    // The upstream call carries no traceparent of ours, nor forwards the caller's.
    expect(fake.requests.at(-1)?.headers.traceparent).toBeUndefined();
  }, 60_000);

  it('(the same check with the endpoint set sees the SDK and its instrumentations)', async () => {
    const receiver = await startOtlpReceiver();
    try {
      const loaded = await openTelemetryPackagesLoaded({ OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url }, fake);
      expect(loaded).toEqual(
        expect.arrayContaining([
          '@opentelemetry/sdk-node',
          '@opentelemetry/instrumentation-http',
          '@opentelemetry/instrumentation-graphql',
          '@opentelemetry/instrumentation-undici',
        ]),
      );
    } finally {
      await receiver.close();
    }
  }, 60_000);
});

describe('the OTel settings', () => {
  it('is off without an endpoint', () => {
    expect(loadConfig({}).tracing).toEqual({ tracesUrl: undefined, protocol: 'http/protobuf', serviceName: 'llmop', headers: {} });
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: '  ' }).tracing.tracesUrl).toBeUndefined();
  });

  it.each([
    ['http://collector:4318', 'http://collector:4318/v1/traces'],
    ['http://collector:4318/', 'http://collector:4318/v1/traces'],
    ['https://otel.example.com/otlp', 'https://otel.example.com/otlp/v1/traces'],
  ])('sends to <endpoint>/v1/traces: %s', (endpoint, tracesUrl) => {
    expect(loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint }).tracing.tracesUrl).toBe(tracesUrl);
  });

  it('takes the signal-specific endpoint, protocol and headers as given, over the general ones', () => {
    const { tracing } = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:4318/custom/path',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_HEADERS: 'Authorization=Bearer%20general,x-tenant=acme',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'authorization=Bearer%20traces',
      OTEL_SERVICE_NAME: 'llmop-eu',
    });
    expect(tracing).toEqual({
      tracesUrl: 'http://traces:4318/custom/path',
      protocol: 'http/json',
      serviceName: 'llmop-eu',
      headers: { authorization: 'Bearer traces', 'x-tenant': 'acme' },
    });
  });

  it('refuses gRPC and malformed headers, never quoting a header value', () => {
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL: must be http\/protobuf or http\/json/,
    );
    expect(() => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' })).toThrow(/OTEL_EXPORTER_OTLP_ENDPOINT/);
    for (const headers of ['just-a-token-secret', 'x=%E0%A4%A-secret', '=secret']) {
      const load = () => loadConfig({ OTEL_EXPORTER_OTLP_HEADERS: headers });
      expect(load).toThrow(ConfigError);
      expect(load).toThrow(/OTEL_EXPORTER_OTLP_HEADERS must be key=value pairs/);
      expect(load).not.toThrow(/secret/);
    }
  });
});
