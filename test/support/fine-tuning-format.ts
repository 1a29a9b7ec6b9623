/**
 * What OpenAI's fine-tuning file validation enforces for the two formats LLMOP exports
 * (GET /api/v1/feedback/export), as published in its fine-tuning guides and its data-preparation
 * cookbook (the checks it runs before accepting a file):
 * - the file is UTF-8 JSON Lines: every line one JSON object; the final newline is optional, a
 *   blank line between examples is not;
 * - `chat` (supervised): `{"messages": [...]}`, a non-empty list of messages, each with a `role`
 *   (system | user | assistant: tools and functions are not part of what LLMOP exports) and a
 *   non-empty string `content`; at least one assistant message, and the last one is the assistant's
 *   (the completion being trained); no other key on the line;
 * - `preference` (DPO): `{"input": {"messages": [...]}, "preferred_output": [...],
 *   "non_preferred_output": [...]}`: the input messages as above but ending with the user's turn
 *   (the prompt the two outputs answer), each output exactly one assistant message with non-empty
 *   string content; no other top-level key.
 * Keys OpenAI accepts and LLMOP never writes are allowed where OpenAI allows them: a message's
 * `name` and (chat, assistant only) `weight` of 0 or 1; `input.tools` and `input.parallel_tool_calls`.
 */

export type FineTuningFormat = 'chat' | 'preference';

const ROLES = ['system', 'user', 'assistant'] as const;
const CHAT_KEYS = new Set(['messages']);
const PREFERENCE_KEYS = new Set(['input', 'preferred_output', 'non_preferred_output']);
const PREFERENCE_INPUT_KEYS = new Set(['messages', 'tools', 'parallel_tool_calls']);

/**
 * Checks a whole fine-tuning file (text, or the raw bytes as received) and returns its parsed
 * lines. Throws an Error naming the 1-based line and the rule it breaks at the first violation.
 */
export function checkFineTuningJsonl(text: string | Buffer | Uint8Array, format: FineTuningFormat): unknown[] {
  let decoded: string;
  if (typeof text === 'string') {
    decoded = text;
  } else {
    try {
      decoded = new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch {
      throw new Error('the file is not valid UTF-8');
    }
  }
  const lines = decoded.split('\n');
  // One final newline ends the last line; it does not open an empty one.
  if (lines.length > 1 && lines.at(-1) === '') lines.pop();
  if (lines.length === 1 && lines[0] === '') throw new Error('the file is empty: no example');
  return lines.map((line, index) => checkLine(line, index + 1, format));
}

function checkLine(line: string, lineNumber: number, format: FineTuningFormat): unknown {
  const fail = (rule: string): never => {
    throw new Error(`line ${lineNumber}: ${rule}`);
  };
  if (line.trim() === '') fail('blank line: every line must be one JSON object');
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch (error) {
    fail(`not valid JSON (${(error as Error).message})`);
  }
  if (!isObject(parsed)) fail('not a JSON object');
  const example = parsed as Record<string, unknown>;
  if (format === 'chat') {
    rejectUnknownKeys(example, CHAT_KEYS, '', fail);
    const messages = checkMessages(example.messages, 'messages', true, fail);
    if (!messages.some((message) => message.role === 'assistant')) fail('messages: no assistant message');
    if (messages.at(-1)!.role !== 'assistant') fail('messages: the last message must be from the assistant');
  } else {
    rejectUnknownKeys(example, PREFERENCE_KEYS, '', fail);
    if (!isObject(example.input)) fail('input: must be an object with messages');
    const input = example.input as Record<string, unknown>;
    rejectUnknownKeys(input, PREFERENCE_INPUT_KEYS, 'input.', fail);
    const messages = checkMessages(input.messages, 'input.messages', false, fail);
    if (messages.at(-1)!.role !== 'user') fail('input.messages: the last message must be from the user');
    for (const key of ['preferred_output', 'non_preferred_output'] as const) {
      const output = example[key];
      if (!Array.isArray(output) || output.length !== 1) fail(`${key}: must be an array of exactly one assistant message`);
      const [message] = checkMessages(output, key, false, fail);
      if (message!.role !== 'assistant') fail(`${key}[0].role: must be "assistant", got "${message!.role}"`);
    }
  }
  return parsed;
}

interface Message {
  readonly role: (typeof ROLES)[number];
  readonly content: string;
}

function checkMessages(value: unknown, at: string, allowWeight: boolean, fail: (rule: string) => never): Message[] {
  if (!Array.isArray(value)) fail(`${at}: must be an array of messages`);
  const messages = value as unknown[];
  if (messages.length === 0) fail(`${at}: must not be empty`);
  return messages.map((message, index) => {
    const where = `${at}[${index}]`;
    if (!isObject(message)) fail(`${where}: a message must be an object`);
    const fields = message as Record<string, unknown>;
    const allowed = new Set(['role', 'content', 'name', ...(allowWeight && fields.role === 'assistant' ? ['weight'] : [])]);
    rejectUnknownKeys(fields, allowed, `${where}.`, fail);
    if (typeof fields.role !== 'string' || !(ROLES as readonly string[]).includes(fields.role)) {
      fail(`${where}.role: must be one of ${ROLES.join(', ')}, got ${JSON.stringify(fields.role)}`);
    }
    if (typeof fields.content !== 'string') fail(`${where}.content: must be a string`);
    if ((fields.content as string).length === 0) fail(`${where}.content: must not be empty`);
    if ('name' in fields && typeof fields.name !== 'string') fail(`${where}.name: must be a string`);
    if ('weight' in fields && fields.weight !== 0 && fields.weight !== 1) fail(`${where}.weight: must be 0 or 1`);
    return { role: fields.role as Message['role'], content: fields.content as string };
  });
}

function rejectUnknownKeys(value: Record<string, unknown>, allowed: ReadonlySet<string>, at: string, fail: (rule: string) => never): void {
  for (const key of Object.keys(value)) if (!allowed.has(key)) fail(`${at}${key}: unknown key`);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
