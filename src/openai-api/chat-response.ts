import type { GenerateOutcome } from '../pipeline/generation-pipeline';
import type { FinishReason } from '../providers/provider';

export type OpenAIFinishReason = 'stop' | 'length' | 'content_filter' | 'tool_calls';

/**
 * LLMOP's finish reasons in OpenAI's words. `error` and `other` (an upstream's own reason, or a
 * stream that ended without one) become `stop`: the answer ended, complete as far as anyone can tell,
 * and OpenAI clients know no other value.
 */
export function mapFinishReason(reason: FinishReason): OpenAIFinishReason {
  switch (reason) {
    case 'stop':
    case 'length':
    case 'content_filter':
    case 'tool_calls':
      return reason;
    default:
      return 'stop';
  }
}

export interface OpenAIUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export const usageOf = ({ metrics }: GenerateOutcome): OpenAIUsage => ({
  prompt_tokens: metrics.inputTokens,
  completion_tokens: metrics.outputTokens,
  total_tokens: metrics.totalTokens,
});

/** `chatcmpl-` and the ledger row's id, so an answer can be looked up with GET /api/v1/generations/{id}. */
export const completionIdOf = (generationId: string): string => `chatcmpl-${generationId}`;

const unixSeconds = (date: Date): number => Math.floor(date.getTime() / 1000);

/** A non-streamed answer: one `chat.completion`. */
export function chatCompletionOf(outcome: GenerateOutcome) {
  return {
    id: completionIdOf(outcome.metadata.generationId),
    object: 'chat.completion',
    created: unixSeconds(outcome.timestamp),
    model: outcome.modelId,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: outcome.text, refusal: null },
        logprobs: null,
        finish_reason: mapFinishReason(outcome.metadata.finishReason),
      },
    ],
    usage: usageOf(outcome),
  };
}

/** The `chat.completion.chunk` events of one streamed answer, all with the same id, creation time and model. */
export class ChunkWriter {
  private readonly head: {
    readonly id: string;
    readonly object: 'chat.completion.chunk';
    readonly created: number;
    readonly model: string;
  };

  constructor(
    generationId: string,
    modelId: string,
    /** With `include_usage`, OpenAI sends `usage: null` on every chunk but the last. */
    private readonly includeUsage: boolean,
    created = new Date(),
  ) {
    this.head = { id: completionIdOf(generationId), object: 'chat.completion.chunk', created: unixSeconds(created), model: modelId };
  }

  /** The first chunk: the assistant's role, no text yet. */
  role(): string {
    return this.choice({ role: 'assistant', content: '', refusal: null }, null);
  }

  content(text: string): string {
    return this.choice({ content: text }, null);
  }

  finish(outcome: GenerateOutcome): string {
    return this.choice({}, mapFinishReason(outcome.metadata.finishReason));
  }

  /** After the finish, with `include_usage`: no choices, the whole answer's usage. */
  usage(outcome: GenerateOutcome): string {
    return JSON.stringify(this.chunk([], usageOf(outcome)));
  }

  private choice(delta: Record<string, unknown>, finishReason: OpenAIFinishReason | null): string {
    const choices = [{ index: 0, delta, logprobs: null, finish_reason: finishReason }];
    return JSON.stringify(this.includeUsage ? this.chunk(choices, null) : this.chunk(choices));
  }

  /** Field by field: `{ ...this.head, choices }` would be a new hidden class for every chunk (Node 20's V8). */
  private chunk(choices: unknown[], usage?: unknown): Record<string, unknown> {
    const { id, object, created, model } = this.head;
    return usage === undefined ? { id, object, created, model, choices } : { id, object, created, model, choices, usage };
  }
}
