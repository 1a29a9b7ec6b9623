/** A version's default generation parameters: each one the version leaves out is the request's (or the gateway's) default. */
export interface PromptParameters {
  readonly maxTokens?: number;
  readonly temperature?: number;
  readonly topP?: number;
}

/** A new version of a prompt, already validated by the service; its number is given by the repository. */
export interface PromptVersionInput {
  readonly name: string;
  readonly template: string;
  /** The template's placeholders, in order of first use. */
  readonly variables: readonly string[];
  readonly description: string | null;
  readonly modelId: string | null;
  /** Null when the version sets no parameter. */
  readonly parameters: PromptParameters | null;
}

/** One stored, immutable version of a prompt. */
export interface PromptVersionRecord {
  readonly name: string;
  readonly version: number;
  readonly template: string;
  readonly variables: readonly string[];
  readonly description: string | null;
  readonly modelId: string | null;
  readonly parameters: { readonly maxTokens?: number; readonly temperature?: number; readonly topP?: number } | null;
  readonly createdAt: Date;
}

/** Concurrent creates of one name kept taking the numbers this one computed: the caller may simply retry. */
export class PromptVersionContentionError extends Error {
  override readonly name = 'PromptVersionContentionError';

  constructor(
    readonly promptName: string,
    readonly attempts: number,
  ) {
    super(`no version number of prompt "${promptName}" was free after ${attempts} attempts under concurrent creates`);
  }
}
