import { conflict, ledgerUnavailable, promptNotFound, validationError } from '../errors/api-error';
import type { CallContext } from '../pipeline/call-context';
import type { GenerateOutcome, GenerationPipeline } from '../pipeline/generation-pipeline';
import type { PromptRepository } from '../storage/prompt-repository';
import { type PromptParameters, type PromptVersionRecord, PromptVersionContentionError } from '../storage/prompt-types';
import { generationLimits } from './generation-parameters';
import { callLedger } from './ledger-call';
import type { ModelService } from './model.service';
import { fillTemplate, templateVariables } from './prompt-template';

/** The contract's bounds on a prompt version (PromptInput). */
export const PROMPT_LIMITS = {
  namePattern: /^[a-z0-9][a-z0-9_.-]{0,63}$/,
  templateMaxLength: 10_000,
  descriptionMaxLength: 2000,
} as const;

export interface PromptVersionRequest {
  readonly name: string;
  readonly template: string;
  readonly description?: string | null;
  readonly modelId?: string | null;
  readonly parameters?: {
    readonly maxTokens?: number | null;
    readonly temperature?: number | null;
    readonly topP?: number | null;
  } | null;
}

export interface PromptGenerateRequest {
  readonly name: string;
  /** The newest version when absent. */
  readonly version?: number | null;
  /** Values of the template's placeholders: strings only; names the template does not use are ignored. */
  readonly variables: unknown;
  /** Override the version's defaults. */
  readonly modelId?: string | null;
  readonly maxTokens?: number | null;
  readonly temperature?: number | null;
  readonly topP?: number | null;
}

/**
 * Versioned prompt templates, shared by every caller, and generations filled from them. Versions
 * live in the ledger's database: with LEDGER=off every operation is 503 ledger_unavailable.
 */
export class PromptService {
  constructor(
    /** Undefined with LEDGER=off. */
    private readonly repository: PromptRepository | undefined,
    private readonly models: ModelService,
    private readonly pipeline: GenerationPipeline,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Saves `request` as the next version of its name; its model, when it names one, must be in the catalog. */
  async createVersion(request: PromptVersionRequest): Promise<PromptVersionRecord> {
    const name = checkName(request.name);
    const template = checkLength('template', request.template, 1, PROMPT_LIMITS.templateMaxLength);
    const description =
      request.description === null || request.description === undefined
        ? null
        : checkLength('description', request.description, 0, PROMPT_LIMITS.descriptionMaxLength);
    const parameters = checkParameters(request.parameters);
    const modelId = request.modelId === null || request.modelId === undefined ? null : request.modelId;
    const repository = this.available();
    if (modelId !== null) {
      if (modelId.trim() === '') throw validationError('Invalid model_id', 'model_id: must not be empty');
      await this.models.getModel(modelId); // 404 model_not_found
    }
    return callLedger(
      () => repository.create({ name, template, variables: templateVariables(template), description, modelId, parameters }),
      this.onError,
      (error) =>
        error instanceof PromptVersionContentionError
          ? conflict(`Too many versions of prompt "${name}" are being created at once`, 'retry the request')
          : undefined,
    );
  }

  /** The newest version of every prompt, the most recently changed first. */
  list(): Promise<PromptVersionRecord[]> {
    const repository = this.available();
    return callLedger(() => repository.latest(), this.onError);
  }

  /** Every version of one prompt, newest first; 404 prompt_not_found when it has none. */
  async versions(name: string): Promise<PromptVersionRecord[]> {
    const repository = this.available();
    const versions = await callLedger(() => repository.versions(name), this.onError);
    if (versions.length === 0) throw promptNotFound(name);
    return versions;
  }

  /** One version; 404 prompt_not_found when the prompt or the version does not exist. */
  async version(name: string, version: number): Promise<PromptVersionRecord> {
    const repository = this.available();
    const found = await callLedger(() => repository.find(name, version), this.onError);
    if (!found) throw promptNotFound(name, version);
    return found;
  }

  /**
   * Fills a version's template (the newest unless `version` is given) and generates with it: the
   * version's model and parameters are defaults that the request overrides. The generation is
   * recorded with source `prompt` and the version as its prompt_ref.
   */
  async generate(request: PromptGenerateRequest, call: CallContext): Promise<GenerateOutcome> {
    const variables = checkVariables(request.variables);
    if (request.version !== null && request.version !== undefined && (!Number.isSafeInteger(request.version) || request.version < 1)) {
      throw validationError('Invalid version', `version: must be an integer of at least 1, got ${request.version}`);
    }
    const repository = this.available();
    const version = request.version ?? undefined;
    const record = await callLedger(() => repository.find(request.name, version), this.onError);
    if (!record) throw promptNotFound(request.name, version);
    const prompt = fillTemplate(record.template, variables);
    const modelId = request.modelId ?? record.modelId;
    if (modelId === null) {
      throw validationError(
        'Missing model_id',
        `model_id: prompt "${record.name}" version ${record.version} has no default model, so the request must name one`,
      );
    }
    return this.pipeline.generate(
      {
        prompt,
        modelId,
        maxTokens: request.maxTokens ?? record.parameters?.maxTokens,
        temperature: request.temperature ?? record.parameters?.temperature,
        topP: request.topP ?? record.parameters?.topP,
        origin: { source: 'prompt', promptRef: { name: record.name, version: record.version } },
      },
      call,
    );
  }

  private available(): PromptRepository {
    if (!this.repository) throw ledgerUnavailable('the ledger is off (LEDGER=off): prompt versions are kept in its database');
    return this.repository;
  }
}

function checkName(name: string): string {
  if (!PROMPT_LIMITS.namePattern.test(name)) {
    throw validationError(
      'Invalid name',
      `name: 1 to 64 characters of a-z, 0-9, "_", "." and "-", starting with a letter or digit (${PROMPT_LIMITS.namePattern.source}), got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Length in characters as JSON Schema counts them (code points). */
function checkLength(field: string, text: string, minLength: number, maxLength: number): string {
  const length = [...text].length;
  if (length < minLength || length > maxLength) {
    throw validationError(`Invalid ${field}`, `${field}: ${minLength} to ${maxLength} characters, got ${length}`);
  }
  return text;
}

function checkParameters(parameters: PromptVersionRequest['parameters']): PromptParameters | null {
  if (!parameters) return null;
  const { maxTokens, temperature, topP } = generationLimits;
  const checked: { maxTokens?: number; temperature?: number; topP?: number } = {};
  if (parameters.maxTokens !== null && parameters.maxTokens !== undefined) {
    checked.maxTokens = checkRange('parameters.max_tokens', parameters.maxTokens, maxTokens, true);
  }
  if (parameters.temperature !== null && parameters.temperature !== undefined) {
    checked.temperature = checkRange('parameters.temperature', parameters.temperature, temperature, false);
  }
  if (parameters.topP !== null && parameters.topP !== undefined) {
    checked.topP = checkRange('parameters.top_p', parameters.topP, topP, false);
  }
  return Object.keys(checked).length === 0 ? null : checked;
}

function checkRange(field: string, value: number, bounds: { readonly min: number; readonly max: number }, integer: boolean): number {
  if (!Number.isFinite(value) || value < bounds.min || value > bounds.max || (integer && !Number.isInteger(value))) {
    throw validationError(
      `Invalid ${field}`,
      `${field}: must be ${integer ? 'an integer' : 'a number'} from ${bounds.min} to ${bounds.max}, got ${value}`,
    );
  }
  return value;
}

/** The request's variables: an object whose every value is a string. */
function checkVariables(variables: unknown): Readonly<Record<string, string>> {
  if (typeof variables !== 'object' || variables === null || Array.isArray(variables)) {
    throw validationError('Invalid variables', 'variables: must be an object of strings');
  }
  for (const [name, value] of Object.entries(variables)) {
    if (typeof value !== 'string') {
      throw validationError(
        'Invalid variables',
        `variables.${name}: must be a string, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`,
      );
    }
  }
  return variables as Record<string, string>;
}
