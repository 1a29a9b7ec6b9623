import { forbidden, generationNotFound, ledgerUnavailable } from '../errors/api-error';
import type { Caller } from '../pipeline/caller';
import type { LedgerRepository } from '../storage/ledger-repository';
import type { Generation, GenerationPage, GenerationStatus, LedgerFilter, UsageGroupBy, UsageReport } from '../storage/ledger-types';
import { callLedger } from './ledger-call';
import { invalidCursor, pageLimit, periodOf } from './paging';

export interface GenerationsQuery {
  readonly modelId?: string | null;
  readonly status?: GenerationStatus | null;
  /** Admins may ask for anyone; a member may name only themselves. */
  readonly caller?: string | null;
  readonly since?: Date | null;
  readonly until?: Date | null;
  readonly limit?: number | null;
  readonly cursor?: string | null;
}

export interface UsageQuery {
  readonly groupBy: UsageGroupBy;
  readonly since?: Date | null;
  readonly until?: Date | null;
}

/**
 * Reads of the ledger with the roles applied: admins see every caller's generations and usage, a
 * member only their own; another caller's generation is not found, exactly like a missing one.
 */
export class LedgerService {
  constructor(
    /** Undefined with LEDGER=off (benchmarks): nothing was recorded, so nothing can be read. */
    private readonly repository: LedgerRepository | undefined,
    /** Told about database failures; callers see ledger_unavailable. */
    private readonly onError: (error: unknown) => void,
  ) {}

  list(caller: Caller, query: GenerationsQuery): Promise<GenerationPage> {
    const limit = pageLimit(query.limit);
    const filter: LedgerFilter = {
      ...periodOf(query),
      caller: visibleCaller(caller, query.caller),
      ...(query.modelId ? { modelId: query.modelId } : {}),
      ...(query.status ? { status: query.status } : {}),
    };
    return this.read((repository) => repository.list(filter, { limit, cursor: query.cursor }));
  }

  async get(caller: Caller, generationId: string): Promise<Generation> {
    const generation = await this.read((repository) => repository.get(generationId));
    // A member learns nothing about other callers' ids: theirs look exactly like missing ones.
    if (!generation || (caller.role !== 'admin' && generation.caller !== caller.name)) throw generationNotFound(generationId);
    return generation;
  }

  usage(caller: Caller, query: UsageQuery): Promise<UsageReport> {
    const filter: LedgerFilter = { ...periodOf(query), caller: visibleCaller(caller, undefined) };
    return this.read((repository) => repository.usage(filter, query.groupBy));
  }

  private read<T>(query: (repository: LedgerRepository) => Promise<T>): Promise<T> {
    const { repository } = this;
    if (!repository) throw ledgerUnavailable('the ledger is off (LEDGER=off): nothing is recorded');
    return callLedger(() => query(repository), this.onError, invalidCursor);
  }
}

/** The caller whose records a request may read: a member's own name, whatever they asked. */
export function visibleCaller(caller: Caller, requested: string | null | undefined): string | undefined {
  if (caller.role === 'admin') return requested ?? undefined;
  if (requested && requested !== caller.name) {
    throw forbidden('Members can read only their own records', `caller: "${caller.name}" may not read "${requested}"`);
  }
  return caller.name;
}
