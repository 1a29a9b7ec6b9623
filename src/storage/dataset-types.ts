/** The most items a dataset holds: an append beyond it is refused whole. */
export const MAX_DATASET_ITEMS = 10_000;

/** A dataset of test cases for evaluation runs. */
export interface DatasetRecord {
  readonly id: string;
  readonly name: string;
  readonly description: string | null;
  readonly itemCount: number;
  readonly createdAt: Date;
}

/** One test case: the prompt's variables and, optionally, the answer expected. */
export interface DatasetItemRecord {
  /** 0-based, in the order the items were given. */
  readonly index: number;
  readonly variables: Readonly<Record<string, string>>;
  readonly expected: string | null;
}

/** An item to store (already validated by the service). */
export interface NewDatasetItem {
  readonly variables: Readonly<Record<string, string>>;
  readonly expected: string | null;
}

/** A dataset to create (already validated by the service). */
export interface NewDataset {
  readonly name: string;
  readonly description: string | null;
  readonly items: readonly NewDatasetItem[];
}

export interface DatasetItemPage {
  readonly items: readonly DatasetItemRecord[];
  readonly nextCursor: string | null;
}

export class DatasetNotFoundError extends Error {
  override readonly name = 'DatasetNotFoundError';

  constructor(readonly datasetId: string) {
    super(`dataset ${datasetId} does not exist`);
  }
}

/** An append would take the dataset past MAX_DATASET_ITEMS: nothing was added. */
export class DatasetFullError extends Error {
  override readonly name = 'DatasetFullError';

  constructor(
    readonly datasetId: string,
    /** What the dataset held when the append was refused. */
    readonly itemCount: number,
    readonly adding: number,
  ) {
    super(`dataset ${datasetId} holds ${itemCount} items: ${adding} more would exceed ${MAX_DATASET_ITEMS}`);
  }

  /** How many more items fit. */
  get room(): number {
    return Math.max(0, MAX_DATASET_ITEMS - this.itemCount);
  }
}
