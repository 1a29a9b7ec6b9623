/**
 * Leaving a subscription before its first event (a user pressing "stop" while the first token is
 * awaited, a component that unmounts): the upstream call stops, whatever the stream held (here the
 * provider's only concurrency slot) is released at once, and the row is recorded `cancelled`. And a
 * subscription sent to POST /graphql, where it cannot stream, is told where to go.
 */
import WebSocket from 'ws';
import { rest } from '../support/contract';
import { type FakeUpstream, startFakeUpstream } from '../support/fake-openai-upstream';
import { generationCalls, type LedgerGeneration } from '../support/ledger-fixtures';
import { poll } from '../support/polling';
import { type RunningGateway, startGateway } from '../support/start-gateway';

const MODEL = 'slow-start-chat';
const SUBSCRIPTION = `subscription { generate_stream(prompt: "hi there", model_id: "${MODEL}", max_tokens: 5) { text } }`;

describe('a subscription left before its first event', () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: [MODEL] });
    gateway = await startGateway({
      // One upstream call at a time: a slot that is never given back blocks every later generation.
      env: { PROVIDER_CONCURRENCY: '1', UPSTREAM_TIMEOUT_MS: '5000' },
      catalog: {
        endpoints: [{ name: 'fake', base_url: fake.url }],
        models: [{ id: MODEL, provider: 'fake', api: 'chat', context_length: 4096, tokenizer: 'cl100k_base' }],
      },
    });
  });

  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });

  it('over WebSocket: a complete sent while the upstream has not answered releases the slot and records the row cancelled', async () => {
    // The upstream takes its time to answer the headers: the subscription is still starting when it is completed.
    fake.latencyMs = 400;
    const socket = new WebSocket(`${gateway.url.replace(/^http/, 'ws')}/graphql`, 'graphql-transport-ws');
    const messages: Array<{ type: string; id?: string }> = [];
    socket.on('message', (data) => messages.push(JSON.parse(String(data)) as { type: string }));
    await new Promise((resolve) => socket.once('open', resolve));
    socket.send(JSON.stringify({ type: 'connection_init' }));
    await poll(
      async () => messages,
      (seen) => seen.some((message) => message.type === 'connection_ack'),
    );
    socket.send(JSON.stringify({ id: 'first', type: 'subscribe', payload: { query: SUBSCRIPTION } }));
    await poll(
      async () => generationCalls(fake).length,
      (calls) => calls === 1,
    );
    socket.send(JSON.stringify({ id: 'first', type: 'complete' }));

    const [row] = (
      await poll(
        () => rest(gateway, 'GET', '/generations?source=stream'),
        (response) => response.body.generations.length === 1,
      )
    ).body.generations as LedgerGeneration[];
    expect(row).toMatchObject({ status: 'cancelled', text: null, metrics: { output_tokens: 0 } });
    // The upstream call itself was dropped, not left to finish.
    await poll(
      async () => generationCalls(fake)[0]?.closedEarlyAt,
      (closedAt) => closedAt !== undefined,
    );

    // The provider's only slot is free again: the next generation answers at once, not after UPSTREAM_TIMEOUT_MS.
    fake.latencyMs = 0;
    const next = await rest(gateway, 'POST', '/generate', { prompt: 'again', model_id: MODEL, max_tokens: 5 });
    expect(next.status).toBe(200);
    expect(next.body.metrics.latency_ms).toBeLessThan(1000);
    expect(messages.filter((message) => message.id === 'first' && message.type === 'next')).toEqual([]);
    socket.close();
  });
});

describe('a subscription sent to POST /graphql', () => {
  let gateway: RunningGateway;

  beforeAll(async () => {
    gateway = await startGateway();
  });

  afterAll(async () => {
    await gateway?.close();
  });

  it('answers validation_error naming the transports that stream, and calls no model', async () => {
    const { body } = await gateway.graphql(`subscription { generate_stream(prompt: "hi", model_id: "llmop-demo-tiny") { text } }`);
    expect(body.errors?.map((error) => [error.extensions?.code, error.message])).toEqual([
      ['validation_error', 'Subscriptions are served over GraphQL-over-SSE and WebSocket'],
    ]);
    expect(String(body.errors?.[0]?.extensions?.details)).toContain('/graphql/stream');
  });
});
