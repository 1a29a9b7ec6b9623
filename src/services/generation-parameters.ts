import { validationError } from '../errors/api-error';
import type { ChatMessage } from '../providers/provider';

// The one set of rules for generation parameters: every surface (GraphQL, REST, ...) reaches these checks
// through the pipeline, so a violation gets the same message and details wherever it was sent. GraphQL's
// type system checks types and required fields first, with graphql-js's message on every surface.

/** The spec's defaults and bounds for generation requests. */
export const generationLimits = {
  maxTokens: { min: 1, max: 2048, default: 100 },
  temperature: { min: 0, max: 2, default: 0.7 },
  topP: { min: 0, max: 1, default: 1.0 },
  promptLength: { min: 1, max: 10_000 },
  batchSize: { min: 1, max: 10 },
  /** A conversation (the OpenAI-compatible API): its length is bounded by the body limit and the model's context. */
  messages: { min: 1, max: 256 },
  /** Stop sequences: how many, and how long each (a local model checks every one after every token). */
  stop: { max: 4, maxLength: 256 },
} as const;

export interface GenerationParameters {
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
}

export interface RequestedParameters {
  readonly maxTokens?: number | null;
  readonly temperature?: number | null;
  readonly topP?: number | null;
}

function checkRange(field: string, value: number, bounds: { min: number; max: number }): number {
  if (!Number.isFinite(value) || value < bounds.min || value > bounds.max) {
    throw validationError(`Invalid ${field}`, `${field} must be between ${bounds.min} and ${bounds.max}, got ${value}`);
  }
  return value;
}

/** Applies defaults and checks bounds; the error names the field and its bound. */
export function resolveParameters(requested: RequestedParameters): GenerationParameters {
  const { maxTokens, temperature, topP } = generationLimits;
  const resolvedMaxTokens = checkRange('max_tokens', requested.maxTokens ?? maxTokens.default, maxTokens);
  if (!Number.isInteger(resolvedMaxTokens)) {
    throw validationError('Invalid max_tokens', `max_tokens must be an integer, got ${resolvedMaxTokens}`);
  }
  return {
    maxTokens: resolvedMaxTokens,
    temperature: checkRange('temperature', requested.temperature ?? temperature.default, temperature),
    topP: checkRange('top_p', requested.topP ?? topP.default, topP),
  };
}

/** Length in characters as JSON Schema counts them (code points, not UTF-16 units). */
const characterCount = (text: string): number => [...text].length;

export function checkPrompt(prompt: string, field = 'prompt'): string {
  const { min, max } = generationLimits.promptLength;
  const length = characterCount(prompt);
  if (length < min || length > max) {
    throw validationError(`Invalid ${field}`, `${field} must be between ${min} and ${max} characters long, got ${length}`);
  }
  return prompt;
}

export function checkPrompts(prompts: readonly string[]): readonly string[] {
  const { min, max } = generationLimits.batchSize;
  if (prompts.length < min || prompts.length > max) {
    throw validationError('Invalid prompts', `prompts must hold between ${min} and ${max} items, got ${prompts.length}`);
  }
  for (const [index, prompt] of prompts.entries()) checkPrompt(prompt, `prompts[${index}]`);
  return prompts;
}

/** A conversation holds at least one message and at most `messages.max`. */
export function checkMessages(messages: readonly ChatMessage[]): readonly ChatMessage[] {
  const { min, max } = generationLimits.messages;
  if (messages.length < min || messages.length > max) {
    throw validationError('Invalid messages', `messages must hold between ${min} and ${max} items, got ${messages.length}`);
  }
  return messages;
}

export function checkStop(stop: readonly string[] | undefined): readonly string[] | undefined {
  if (stop === undefined) return undefined;
  if (stop.length > generationLimits.stop.max) {
    throw validationError('Invalid stop', `stop must hold at most ${generationLimits.stop.max} sequences, got ${stop.length}`);
  }
  const { maxLength } = generationLimits.stop;
  if (stop.some((sequence) => sequence.length === 0 || sequence.length > maxLength)) {
    throw validationError('Invalid stop', `stop sequences must be 1 to ${maxLength} characters long`);
  }
  return stop;
}

/** What the ledger keeps (and a completion model reads) for a conversation: one paragraph per message. */
export const transcriptOf = (messages: readonly ChatMessage[]): string =>
  messages.map((message) => `${message.role}: ${message.content}`).join('\n\n');

export function checkModelId(modelId: string): string {
  if (modelId.trim().length === 0) throw validationError('Invalid model_id', 'model_id must not be empty');
  return modelId;
}
