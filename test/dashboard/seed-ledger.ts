/**
 * Finished generations at chosen times, with chosen latencies, written through the storage layer
 * before a gateway opens the ledger (the gateway's clock cannot be set from outside): for the
 * dashboard's time series, whose buckets and percentiles depend on both.
 */
import { openDatabase, type DatabaseSettings } from '../../src/storage/database';
import { newGenerationId } from '../../src/storage/generation-id';
import { LedgerRepository } from '../../src/storage/ledger-repository';
import type { GenerationStatus } from '../../src/storage/ledger-types';

export interface SeedRow {
  /** Epoch ms. */
  readonly createdAt: number;
  readonly caller: string;
  readonly team: string | null;
  readonly modelId: string;
  readonly status: GenerationStatus;
  readonly latencyMs: number;
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly costUsd: number;
}

/** Writes the rows as finished generations, in the order given. */
export async function seedFinished(settings: DatabaseSettings, rows: readonly SeedRow[]): Promise<void> {
  const database = await openDatabase(settings);
  let clock = new Date(0);
  const repository = new LedgerRepository(database, { recordContent: true, now: () => clock });
  try {
    for (const [index, row] of rows.entries()) {
      const createdAt = new Date(row.createdAt);
      const id = newGenerationId(createdAt);
      clock = createdAt;
      await repository.start({
        id,
        requestId: `seed-${index}`,
        caller: row.caller,
        team: row.team,
        source: 'generate',
        modelId: row.modelId,
        provider: 'vllm',
        upstreamModel: row.modelId,
        prompt: `seeded ${index}`,
        promptRef: null,
        evaluationId: null,
        parameters: { maxTokens: 16, temperature: 0, topP: 1 },
        createdAt,
      });
      clock = new Date(row.createdAt + row.latencyMs);
      await repository.finish(id, {
        status: row.status,
        error: row.status === 'succeeded' ? null : row.status === 'failed' ? 'generation_error' : 'interrupted',
        finishReason: row.status === 'succeeded' ? 'stop' : null,
        text: row.status === 'succeeded' ? 'seeded' : null,
        inputTokens: row.inputTokens,
        outputTokens: row.outputTokens,
        costUsd: row.costUsd,
        latencyMs: row.latencyMs,
        attempts: [{ provider: 'vllm', upstreamModel: row.modelId, error: null, latencyMs: row.latencyMs }],
      });
    }
  } finally {
    await repository.close();
    await database.close();
  }
}
