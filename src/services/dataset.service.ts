import { datasetNotFound, ledgerUnavailable, validationError } from '../errors/api-error';
import type { DatasetRepository } from '../storage/dataset-repository';
import {
  type DatasetItemPage,
  type DatasetRecord,
  DatasetFullError,
  DatasetNotFoundError,
  MAX_DATASET_ITEMS,
  type NewDatasetItem,
} from '../storage/dataset-types';
import { callLedger } from './ledger-call';
import { invalidCursor, pageLimit } from './paging';

/** The contract's bounds on datasets. */
export const DATASET_LIMITS = {
  nameMaxLength: 200,
  descriptionMaxLength: 2000,
  maxItems: MAX_DATASET_ITEMS,
  maxAppendedItems: 1000,
  expectedMaxLength: 100_000,
} as const;

/** An item as a client sends it: `variables` is any JSON object until checked. */
export interface DatasetItemInput {
  readonly variables: Readonly<Record<string, unknown>>;
  readonly expected?: string | null;
}

export interface DatasetInput {
  readonly name: string;
  readonly description?: string | null;
  readonly items: readonly DatasetItemInput[];
}

const INVALID = 'Invalid request parameters';

/** Evaluation datasets: test cases that every caller shares, read and extends. */
export class DatasetService {
  constructor(
    /** Undefined with LEDGER=off: datasets live in the ledger's database. */
    private readonly repository: DatasetRepository | undefined,
    private readonly onError: (error: unknown) => void,
  ) {}

  create(input: DatasetInput): Promise<DatasetRecord> {
    const name = input.name;
    if (name.length < 1 || name.length > DATASET_LIMITS.nameMaxLength) {
      throw validationError(INVALID, `name: 1 to ${DATASET_LIMITS.nameMaxLength} characters, got ${name.length}`);
    }
    const description = input.description ?? null;
    if (description !== null && description.length > DATASET_LIMITS.descriptionMaxLength) {
      throw validationError(INVALID, `description: at most ${DATASET_LIMITS.descriptionMaxLength} characters, got ${description.length}`);
    }
    const items = checkItems(input.items, DATASET_LIMITS.maxItems);
    return this.call((repository) => repository.create({ name, description, items }));
  }

  /** Every dataset, newest first. */
  list(): Promise<DatasetRecord[]> {
    return this.call((repository) => repository.list());
  }

  async get(datasetId: string): Promise<DatasetRecord> {
    const dataset = await this.call((repository) => repository.get(datasetId));
    if (!dataset) throw datasetNotFound(datasetId);
    return dataset;
  }

  /** A dataset's items in index order, a page at a time. */
  items(datasetId: string, query: { readonly limit?: number | null; readonly cursor?: string | null }): Promise<DatasetItemPage> {
    const limit = pageLimit(query.limit);
    return this.call(
      (repository) => repository.page(datasetId, { limit, cursor: query.cursor }),
      (error) => invalidCursor(error) ?? notFound(error),
    );
  }

  /** Adds items after the last one, all or none; answers the dataset with its new item count. */
  append(datasetId: string, items: readonly DatasetItemInput[]): Promise<DatasetRecord> {
    const checked = checkItems(items, DATASET_LIMITS.maxAppendedItems);
    return this.call(
      (repository) => repository.append(datasetId, checked),
      (error) => {
        if (!(error instanceof DatasetFullError)) return notFound(error);
        return validationError(
          `A dataset holds at most ${MAX_DATASET_ITEMS} items`,
          `dataset ${datasetId} has ${error.itemCount} items, so at most ${error.room} more fit, not ${error.adding}: nothing was added`,
        );
      },
    );
  }

  private call<T>(query: (repository: DatasetRepository) => Promise<T>, translate?: (error: unknown) => Error | undefined): Promise<T> {
    if (!this.repository) throw ledgerUnavailable('the ledger is off (LEDGER=off): datasets are kept in its database');
    const repository = this.repository;
    return callLedger(() => query(repository), this.onError, translate);
  }
}

const notFound = (error: unknown): Error | undefined =>
  error instanceof DatasetNotFoundError ? datasetNotFound(error.datasetId) : undefined;

function checkItems(items: readonly DatasetItemInput[], maxItems: number): NewDatasetItem[] {
  if (items.length < 1 || items.length > maxItems) {
    throw validationError(INVALID, `items: 1 to ${maxItems} items, got ${items.length}`);
  }
  return items.map((item, index) => ({
    variables: checkVariables(item.variables, index),
    expected: checkExpected(item.expected, index),
  }));
}

function checkVariables(variables: Readonly<Record<string, unknown>>, index: number): Record<string, string> {
  if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) {
    throw validationError(INVALID, `items[${index}].variables: must be an object of strings`);
  }
  for (const [name, value] of Object.entries(variables)) {
    if (typeof value !== 'string') {
      const got =
        value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
      throw validationError(INVALID, `items[${index}].variables.${name}: must be a string, got ${got}`);
    }
  }
  return variables as Record<string, string>;
}

function checkExpected(expected: string | null | undefined, index: number): string | null {
  if (expected === null || expected === undefined) return null;
  if (expected.length > DATASET_LIMITS.expectedMaxLength) {
    throw validationError(
      INVALID,
      `items[${index}].expected: at most ${DATASET_LIMITS.expectedMaxLength} characters, got ${expected.length}`,
    );
  }
  return expected;
}
