import type { ChatMessage } from '../providers/provider';
import { InvalidRequestError } from './openai-errors';

/**
 * A POST /v1/chat/completions body as LLMOP runs it. Only shapes and types are checked here; the
 * bounds (max_tokens, temperature, top_p, stop, messages) are the pipeline's one rule set.
 */
export interface ChatCompletionRequest {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly maxTokens?: number;
  /** The field the client set max tokens with, so errors name it. */
  readonly maxTokensField: 'max_tokens' | 'max_completion_tokens';
  readonly temperature?: number;
  readonly topP?: number;
  readonly stop?: readonly string[];
  readonly seed?: number;
  readonly stream: boolean;
  /** `stream_options.include_usage`: a last chunk with the usage and no choices. */
  readonly includeUsage: boolean;
}

/** The fields this API reads. */
const readFields: ReadonlySet<string> = new Set([
  'model',
  'messages',
  'max_tokens',
  'max_completion_tokens',
  'temperature',
  'top_p',
  'stop',
  'seed',
  'stream',
  'stream_options',
  'n',
]);

/** OpenAI fields that change nothing about the answer (tags, storage and caching hints): accepted and ignored. */
const ignoredFields: ReadonlySet<string> = new Set([
  'user',
  'metadata',
  'store',
  'service_tier',
  'safety_identifier',
  'prompt_cache_key',
  'prompt_cache_retention',
  'parallel_tool_calls',
]);

interface Unsupported {
  /** The values that ask for nothing LLMOP cannot do (null, OpenAI's "not set", is always accepted). */
  readonly accepts: (value: unknown) => boolean;
  readonly why: string;
}

const never = (): boolean => false;
const isEmptyList = (value: unknown): boolean => Array.isArray(value) && value.length === 0;

/** OpenAI fields LLMOP cannot honour: refused (400, naming the field) unless set to their default. */
const unsupportedFields: Readonly<Record<string, Unsupported>> = {
  tools: { accepts: isEmptyList, why: 'LLMOP does not run tool calls' },
  tool_choice: { accepts: (value) => value === 'none', why: 'LLMOP does not run tool calls' },
  functions: { accepts: isEmptyList, why: 'LLMOP does not run function calls' },
  function_call: { accepts: (value) => value === 'none', why: 'LLMOP does not run function calls' },
  response_format: {
    accepts: (value) => isObject(value) && value.type === 'text' && Object.keys(value).length === 1,
    why: 'only {"type": "text"} is supported (no JSON mode or structured output)',
  },
  logprobs: { accepts: (value) => value === false, why: 'log probabilities are not returned' },
  top_logprobs: { accepts: (value) => value === 0, why: 'log probabilities are not returned' },
  logit_bias: { accepts: (value) => isObject(value) && Object.keys(value).length === 0, why: 'logit bias is not supported' },
  frequency_penalty: { accepts: (value) => value === 0, why: 'penalties are not supported' },
  presence_penalty: { accepts: (value) => value === 0, why: 'penalties are not supported' },
  modalities: {
    accepts: (value) => Array.isArray(value) && value.length === 1 && value[0] === 'text',
    why: 'only text output is supported',
  },
  audio: { accepts: never, why: 'only text output is supported' },
  prediction: { accepts: never, why: 'predicted outputs are not supported' },
  web_search_options: { accepts: never, why: 'web search is not supported' },
  reasoning_effort: { accepts: never, why: 'reasoning effort is not supported' },
  verbosity: { accepts: never, why: 'verbosity is not supported' },
};

/** Assistant message fields that are only acceptable empty (LLMOP never produced them). */
const assistantOnlyWhenEmpty: ReadonlySet<string> = new Set(['tool_calls', 'function_call', 'audio', 'refusal']);

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** User-supplied names and values in messages, cut short: an error must not echo a megabyte back. */
function clipped(value: unknown): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

const typeName = (value: unknown): string => (Array.isArray(value) ? 'an array' : value === null ? 'null' : `a ${typeof value}`);

const wrongType = (field: string, expected: string, value: unknown): InvalidRequestError =>
  new InvalidRequestError(`Invalid type for '${field}': expected ${expected}, but got ${typeName(value)} instead.`, field);

/** Reads and type-checks a chat completion request; throws InvalidRequestError naming the field at fault. */
export function parseChatRequest(body: unknown): ChatCompletionRequest {
  if (!isObject(body)) throw new InvalidRequestError('The request body must be a JSON object.', null);
  // null is OpenAI's "not set" for every optional field.
  const present = Object.entries(body).filter(([, value]) => value !== null && value !== undefined);
  for (const [field, value] of present) {
    if (readFields.has(field) || ignoredFields.has(field)) continue;
    const unsupported = unsupportedFields[field];
    if (!unsupported) throw new InvalidRequestError(`Unrecognized request argument supplied: ${clipped(field)}`, clipped(field));
    if (!unsupported.accepts(value)) throw new InvalidRequestError(`'${field}' is not supported: ${unsupported.why}.`, field);
  }
  const fields = Object.fromEntries(present);

  if (typeof fields.model !== 'string' || fields.model.trim() === '') {
    throw new InvalidRequestError(
      fields.model === undefined ? 'You must provide a model parameter.' : "'model' must be a non-empty string.",
      'model',
    );
  }
  if (!Array.isArray(fields.messages)) {
    throw fields.messages === undefined
      ? new InvalidRequestError("Missing required parameter: 'messages'.", 'messages')
      : wrongType('messages', 'an array', fields.messages);
  }
  if (fields.n !== undefined && fields.n !== 1)
    throw new InvalidRequestError("'n' is not supported: only one choice (n = 1) is generated.", 'n');

  const stream = optionalBoolean(fields, 'stream') ?? false;
  const includeUsage = streamOptions(fields.stream_options, stream);
  const { maxTokens, maxTokensField } = maxTokensOf(fields);
  const seed = optionalNumber(fields, 'seed');
  if (seed !== undefined && !Number.isSafeInteger(seed)) throw new InvalidRequestError(`'seed' must be an integer, got ${seed}.`, 'seed');
  return {
    model: fields.model,
    messages: fields.messages.map(messageOf),
    maxTokens,
    maxTokensField,
    temperature: optionalNumber(fields, 'temperature'),
    topP: optionalNumber(fields, 'top_p'),
    stop: stopOf(fields.stop),
    seed,
    stream,
    includeUsage,
  };
}

function optionalNumber(fields: Readonly<Record<string, unknown>>, field: string): number | undefined {
  const value = fields[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'number') throw wrongType(field, 'a number', value);
  return value;
}

function optionalBoolean(fields: Readonly<Record<string, unknown>>, field: string): boolean | undefined {
  const value = fields[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw wrongType(field, 'a boolean', value);
  return value;
}

/** max_completion_tokens is OpenAI's current name, max_tokens the older one; both mean the same here. */
function maxTokensOf(fields: Readonly<Record<string, unknown>>): Pick<ChatCompletionRequest, 'maxTokens' | 'maxTokensField'> {
  const completion = optionalNumber(fields, 'max_completion_tokens');
  const legacy = optionalNumber(fields, 'max_tokens');
  if (completion !== undefined && legacy !== undefined && completion !== legacy) {
    throw new InvalidRequestError("Set either 'max_tokens' or 'max_completion_tokens', not both with different values.", 'max_tokens');
  }
  if (completion !== undefined) return { maxTokens: completion, maxTokensField: 'max_completion_tokens' };
  return { maxTokens: legacy, maxTokensField: 'max_tokens' };
}

function streamOptions(value: unknown, stream: boolean): boolean {
  if (value === undefined) return false;
  if (!stream) throw new InvalidRequestError("The 'stream_options' parameter is only allowed when 'stream' is enabled.", 'stream_options');
  if (!isObject(value)) throw wrongType('stream_options', 'an object', value);
  for (const [option, setting] of Object.entries(value)) {
    if (setting === null || setting === undefined) continue;
    // Obfuscation pads chunks against side channels on OpenAI's network; there is nothing to hide here.
    if (option !== 'include_usage' && option !== 'include_obfuscation') {
      const name = `stream_options.${clipped(option)}`;
      throw new InvalidRequestError(`Unrecognized request argument supplied: ${name}`, name);
    }
    if (typeof setting !== 'boolean') throw wrongType(`stream_options.${option}`, 'a boolean', setting);
  }
  return value.include_usage === true;
}

function stopOf(value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string') return [value];
  if (!Array.isArray(value) || !value.every((sequence) => typeof sequence === 'string')) {
    throw wrongType('stop', 'a string or an array of strings', value);
  }
  return value;
}

/** One message: system (or developer, its newer name), user or assistant, with text content. */
function messageOf(message: unknown, index: number): ChatMessage {
  const at = `messages[${index}]`;
  if (!isObject(message)) throw wrongType(at, 'an object', message);
  const { role } = message;
  if (role === 'tool' || role === 'function') {
    throw new InvalidRequestError(`${at}: '${role}' messages are not supported: LLMOP does not run tool calls.`, `${at}.role`);
  }
  if (role !== 'system' && role !== 'developer' && role !== 'user' && role !== 'assistant') {
    throw new InvalidRequestError(
      `${at}.role must be one of 'system', 'developer', 'user' or 'assistant', got ${clipped(JSON.stringify(role) ?? 'nothing')}.`,
      `${at}.role`,
    );
  }
  for (const [field, value] of Object.entries(message)) {
    if (field === 'role' || field === 'content' || value === null || value === undefined) continue;
    // A participant's name has no place in a chat template: it is dropped, as many OpenAI-compatible servers do.
    if (field === 'name') {
      if (typeof value !== 'string') throw wrongType(`${at}.name`, 'a string', value);
      continue;
    }
    if (role === 'assistant' && assistantOnlyWhenEmpty.has(field) && isEmptyList(value)) continue;
    if (role === 'assistant' && assistantOnlyWhenEmpty.has(field)) {
      throw new InvalidRequestError(`${at}.${field} is not supported: only text messages are.`, `${at}.${field}`);
    }
    const name = `${at}.${clipped(field)}`;
    throw new InvalidRequestError(`Unrecognized request argument supplied: ${name}`, name);
  }
  return { role: role === 'developer' ? 'system' : role, content: contentOf(message.content, at) };
}

/** A string, or an array of text parts (joined with newlines, as vLLM joins them). */
function contentOf(content: unknown, at: string): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw wrongType(`${at}.content`, 'a string or an array of text parts', content);
  return content
    .map((part: unknown, index) => {
      const partAt = `${at}.content[${index}]`;
      if (!isObject(part)) throw wrongType(partAt, 'an object', part);
      if (part.type !== 'text') {
        throw new InvalidRequestError(
          `${partAt}: content parts of type ${clipped(JSON.stringify(part.type) ?? 'nothing')} are not supported: only text parts are.`,
          `${partAt}.type`,
        );
      }
      if (typeof part.text !== 'string') throw wrongType(`${partAt}.text`, 'a string', part.text);
      return part.text;
    })
    .join('\n');
}
