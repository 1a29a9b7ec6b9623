/**
 * Shared pieces of the ledger's end-to-end suites (test/ledger): the two stores a gateway can keep
 * its ledger in, keys with roles, a catalog on the fake upstream, paging walks and usage tallies
 * computed from what /generations lists, and a way to put rows at chosen times into a ledger
 * before a gateway opens it (the gateway's clock cannot be set from outside).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type DatabaseSettings } from '../../src/storage/database';
import { newGenerationId } from '../../src/storage/generation-id';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import type { GenerationStatus, LedgerSource } from '../../src/storage/ledger-types';
import { expectToMatchContract, rest, type RestResponse } from './contract';
import type { FakeUpstream } from './fake-openai-upstream';
import { startPostgres, type TestPostgres } from './postgres-server';

// ---------------------------------------------------------------------------------------------
// Where a gateway keeps its ledger.

export interface FreshLedger {
  /** Environment for startGateway/spawnServer: DATA_DIR (SQLite) or DATABASE_URL (PostgreSQL). */
  readonly env: Record<string, string>;
  /** The same database for the storage layer (seeding). */
  readonly settings: DatabaseSettings;
}

export interface LedgerSetup {
  readonly name: 'SQLite' | 'PostgreSQL';
  setUp(): Promise<void>;
  /** A new, empty database. */
  freshLedger(): Promise<FreshLedger>;
  tearDown(): Promise<void>;
}

export function sqliteLedgerSetup(): LedgerSetup {
  return {
    name: 'SQLite',
    setUp: async () => undefined,
    async freshLedger() {
      const dataDir = mkdtempSync(path.join(os.tmpdir(), 'llmop-ledger-e2e-'));
      return { env: { DATA_DIR: dataDir }, settings: { sqliteFile: path.join(dataDir, 'llmop.db') } };
    },
    tearDown: async () => undefined,
  };
}

export function postgresLedgerSetup(): LedgerSetup {
  let server: TestPostgres | undefined;
  return {
    name: 'PostgreSQL',
    async setUp() {
      server = await startPostgres();
    },
    async freshLedger() {
      if (!server) throw new Error('setUp() first');
      const databaseUrl = await server.createDatabase();
      // DATA_DIR stays a fresh temporary directory (startGateway's default), unused by the ledger.
      return { env: { DATABASE_URL: databaseUrl }, settings: { databaseUrl, sqliteFile: '/nonexistent/unused.db' } };
    },
    async tearDown() {
      await server?.stop();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Keys and roles.

/** In API_KEYS: an admin named key-1, without a team. */
export const ADMIN_KEY = 'admin-inline-key-0123456789';

export interface FileKey {
  readonly name: string;
  readonly key: string;
  readonly role?: 'admin' | 'member';
  readonly team?: string;
  readonly limits?: { generate?: number; generate_batch?: number; other?: number };
}

/** In API_KEYS_FILE. */
export const FILE_KEYS = {
  /** A member of team red. */
  alice: { name: 'alice', key: 'alice-member-key-0123456789', role: 'member', team: 'red' },
  /** A member without a team (role left to its default). */
  bob: { name: 'bob', key: 'bob-member-key-0123456789' },
  /** An admin from the file, team blue. */
  carol: { name: 'carol', key: 'carol-admin-key-0123456789', role: 'admin', team: 'blue' },
  /** A member of team red allowed one generate per rate-limit window. */
  dave: { name: 'dave', key: 'dave-member-key-0123456789', role: 'member', team: 'red', limits: { generate: 1 } },
} as const satisfies Record<string, FileKey>;

export function writeKeysFile(keys: readonly FileKey[]): string {
  const directory = mkdtempSync(path.join(os.tmpdir(), 'llmop-ledger-keys-'));
  const file = path.join(directory, 'keys.json');
  writeFileSync(file, JSON.stringify({ keys }));
  return file;
}

export const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });

// ---------------------------------------------------------------------------------------------
// Models on the fake upstream.

export const CHAT_MODEL = 'tiny-chat';
export const COMPLETION_MODEL = 'tiny-completion';
export const LEDGER_MODELS = [CHAT_MODEL, COMPLETION_MODEL];

/** Two priced models on a vLLM-like endpoint: one chat, one completion (whose batches go up in one call). */
export const ledgerCatalog = (fake: FakeUpstream) => ({
  endpoints: [{ name: 'vllm', base_url: fake.url }],
  models: [
    { id: CHAT_MODEL, provider: 'vllm', api: 'chat', context_length: 4096, pricing: { input_per_million: 3, output_per_million: 15 } },
    {
      id: COMPLETION_MODEL,
      provider: 'vllm',
      api: 'completion',
      context_length: 4096,
      pricing: { input_per_million: 0.5, output_per_million: 1.5 },
    },
  ],
});

export const generationCalls = (fake: FakeUpstream) =>
  fake.requests.filter((request) => request.method === 'POST' && request.path !== '/v1/models');

// ---------------------------------------------------------------------------------------------
// The ledger as REST lists it.

/** A Generation as the contract shapes it. */
export interface LedgerGeneration {
  id: string;
  request_id: string;
  caller: string;
  team: string | null;
  source: string;
  model_id: string;
  provider: string;
  status: 'succeeded' | 'failed' | 'cancelled';
  error: string | null;
  prompt: string | null;
  text: string | null;
  parameters: { max_tokens: number; temperature: number; top_p: number };
  metrics: { latency_ms: number; input_tokens: number; output_tokens: number; total_tokens: number };
  cost_usd: number;
  prompt_ref: { name: string; version: number } | null;
  evaluation_id: string | null;
  created_at: string;
  attempts?: Array<{ model_id: string; provider: string; error: string | null; latency_ms: number | null }>;
}

export interface UsageTotals {
  requests: number;
  succeeded: number;
  failed: number;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cost_usd: number;
}

export interface UsageReport {
  group_by: 'model' | 'caller' | 'team' | 'day';
  since: string | null;
  until: string | null;
  rows: Array<UsageTotals & { group: string }>;
  totals: UsageTotals;
}

/** The contract fields of a Generation, for GraphQL selections. */
export const GENERATION_FIELDS = `id request_id caller team source model_id provider status error prompt text
  parameters { max_tokens temperature top_p } metrics { latency_ms input_tokens output_tokens total_tokens }
  cost_usd prompt_ref { name version } evaluation_id created_at`;

export const USAGE_FIELDS = `group_by since until
  rows { group requests succeeded failed input_tokens output_tokens total_tokens cost_usd }
  totals { requests succeeded failed input_tokens output_tokens total_tokens cost_usd }`;

export type Query = Record<string, string | number | Date | undefined>;

/** `path?query`, with Dates as RFC 3339 and undefined values left out. */
export function withQuery(pathname: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined) continue;
    params.set(name, value instanceof Date ? value.toISOString() : String(value));
  }
  const text = params.toString();
  return text ? `${pathname}?${text}` : pathname;
}

/** GET below /api/v1 with a query, validated against the served contract for `contractPath`. */
export async function getChecked<TBody = any>(
  gateway: { url: string },
  contractPath: '/generations' | '/generations/{generation_id}' | '/usage' | '/ready' | '/feedback' | '/feedback/summary',
  pathname: string,
  query: Query = {},
  headers: Record<string, string> = {},
): Promise<RestResponse<TBody>> {
  const response = await rest<TBody>(gateway, 'GET', withQuery(pathname, query), undefined, headers);
  expectToMatchContract(response, contractPath, 'get');
  return response;
}

/** Every page of /generations for `query` (newest first), each page checked against the contract. */
export async function walkGenerations(
  gateway: { url: string },
  query: Query,
  headers: Record<string, string> = {},
  afterEachPage?: () => Promise<void>,
): Promise<LedgerGeneration[]> {
  const all: LedgerGeneration[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < 10_000; page++) {
    const response = await getChecked<{ generations: LedgerGeneration[]; next_cursor: string | null }>(
      gateway,
      '/generations',
      '/generations',
      { ...query, cursor },
      headers,
    );
    if (response.status !== 200) throw new Error(`GET /generations answered ${response.status}: ${JSON.stringify(response.body)}`);
    all.push(...response.body.generations);
    if (response.body.next_cursor === null) return all;
    if (response.body.generations.length === 0) throw new Error('a page with no generations still had a next_cursor');
    cursor = response.body.next_cursor;
    await afterEachPage?.();
  }
  throw new Error('more than 10,000 pages');
}

const zeroTotals = (): UsageTotals => ({
  requests: 0,
  succeeded: 0,
  failed: 0,
  input_tokens: 0,
  output_tokens: 0,
  total_tokens: 0,
  cost_usd: 0,
});

/** What a usage report should say about these generations. */
export function tally(generations: readonly LedgerGeneration[]): UsageTotals {
  const totals = zeroTotals();
  for (const generation of generations) {
    totals.requests += 1;
    if (generation.status === 'succeeded') totals.succeeded += 1;
    if (generation.status === 'failed') totals.failed += 1;
    totals.input_tokens += generation.metrics.input_tokens;
    totals.output_tokens += generation.metrics.output_tokens;
    totals.total_tokens += generation.metrics.total_tokens;
    totals.cost_usd += generation.cost_usd;
  }
  return totals;
}

export function sumRows(rows: readonly UsageTotals[]): UsageTotals {
  const totals = zeroTotals();
  for (const row of rows) {
    for (const key of Object.keys(totals) as (keyof UsageTotals)[]) totals[key] += row[key];
  }
  return totals;
}

/** Equal counts and tokens, and the same money to a tenth of a nano-dollar (the ledger keeps 1e-10 USD). */
export function expectSameTotals(actual: UsageTotals, expected: UsageTotals, where: string): void {
  const { cost_usd: actualCost, ...actualCounts } = actual;
  const { cost_usd: expectedCost, ...expectedCounts } = expected;
  try {
    expect(actualCounts).toEqual(expectedCounts);
    expect(Math.abs(actualCost - expectedCost)).toBeLessThan(1e-9);
  } catch (error) {
    throw new Error(`${where}: ${(error as Error).message}\nactual: ${JSON.stringify(actual)}\nexpected: ${JSON.stringify(expected)}`);
  }
}

export const groupOf = (groupBy: UsageReport['group_by'], generation: LedgerGeneration): string => {
  switch (groupBy) {
    case 'model':
      return generation.model_id;
    case 'caller':
      return generation.caller;
    case 'team':
      return generation.team ?? '';
    case 'day':
      return new Date(generation.created_at).toISOString().slice(0, 10);
  }
};

// ---------------------------------------------------------------------------------------------
// Rows at chosen times, written before a gateway opens the ledger.

export interface SeedRow {
  readonly createdAt: Date;
  readonly caller: string;
  readonly team: string | null;
  readonly modelId: string;
  readonly status: GenerationStatus;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costUsd: number;
  readonly source?: LedgerSource;
  readonly prompt?: string;
}

/** Writes finished generations through the storage layer; returns their ids in the order given. */
export async function seedLedger(settings: DatabaseSettings, rows: readonly SeedRow[]): Promise<string[]> {
  const database = await openDatabase(settings);
  let clock = new Date(0);
  const repository = new LedgerRepository(database, { recordContent: true, now: () => clock });
  const ids: string[] = [];
  try {
    for (const row of rows) {
      const id = newGenerationId(row.createdAt);
      ids.push(id);
      clock = row.createdAt;
      await repository.start({
        id,
        requestId: `seed-${ids.length}`,
        caller: row.caller,
        team: row.team,
        source: row.source ?? 'generate',
        modelId: row.modelId,
        provider: 'vllm',
        upstreamModel: row.modelId,
        prompt: row.prompt ?? `seeded prompt ${ids.length}`,
        promptRef: null,
        evaluationId: null,
        parameters: { maxTokens: 100, temperature: 0.7, topP: 1 },
        createdAt: row.createdAt,
      });
      clock = new Date(row.createdAt.getTime() + 5);
      await repository.finish(id, {
        status: row.status,
        error: row.status === 'succeeded' ? null : row.status === 'failed' ? 'generation_error' : 'interrupted',
        finishReason: row.status === 'succeeded' ? 'stop' : null,
        text: row.status === 'succeeded' ? 'seeded text' : null,
        inputTokens: row.inputTokens,
        outputTokens: row.outputTokens,
        costUsd: row.costUsd,
        latencyMs: 5,
        attempts: [{ provider: 'vllm', upstreamModel: row.modelId, error: null, latencyMs: 5 }],
      });
    }
  } finally {
    await repository.close();
    await database.close();
  }
  return ids;
}
