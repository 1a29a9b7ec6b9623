import { checkFineTuningJsonl } from './fine-tuning-format';

const chat = (messages: unknown[]) => JSON.stringify({ messages });
const user = (content: unknown = 'What is 2+2?') => ({ role: 'user', content });
const assistant = (content: unknown = '4') => ({ role: 'assistant', content });
const preference = (fields: Record<string, unknown> = {}) =>
  JSON.stringify({
    input: { messages: [user()] },
    preferred_output: [assistant('4')],
    non_preferred_output: [assistant('5')],
    ...fields,
  });

describe('checkFineTuningJsonl', () => {
  describe('accepts', () => {
    it('a chat file with or without its final newline, from text or bytes, returning the parsed lines', () => {
      const lines = [chat([user(), assistant()]), chat([{ role: 'system', content: 'Be brief.' }, user('Hi'), assistant('Hello')])];
      const expected = lines.map((line) => JSON.parse(line));
      expect(checkFineTuningJsonl(lines.join('\n'), 'chat')).toEqual(expected);
      expect(checkFineTuningJsonl(`${lines.join('\n')}\n`, 'chat')).toEqual(expected);
      expect(checkFineTuningJsonl(Buffer.from(`${lines.join('\n')}\n`), 'chat')).toEqual(expected);
    });

    it('multi-byte UTF-8 content, escaped and raw', () => {
      const text = `${chat([user('café “quoted”\nline two'), assistant('東京 😀')])}\n`;
      expect(checkFineTuningJsonl(Buffer.from(text, 'utf8'), 'chat')).toHaveLength(1);
    });

    it('a multi-turn chat that ends with the assistant, and the keys OpenAI allows on a message', () => {
      const line = chat([user('a'), { ...assistant('b'), weight: 0 }, { ...user('c'), name: 'dana' }, { ...assistant('d'), weight: 1 }]);
      expect(checkFineTuningJsonl(line, 'chat')).toHaveLength(1);
    });

    it('a preference file, with a system message and earlier turns in its input', () => {
      const lines = [
        preference(),
        preference({ input: { messages: [{ role: 'system', content: 'Be brief.' }, user('a'), assistant('b'), user('c')] } }),
      ];
      expect(checkFineTuningJsonl(`${lines.join('\n')}\n`, 'preference')).toHaveLength(2);
    });
  });

  describe('rejects, naming the line and the rule', () => {
    const good = chat([user(), assistant()]);

    it.each<[string, string | Buffer, RegExp]>([
      [
        'bytes that are not UTF-8',
        Buffer.concat([Buffer.from(`${good}\n{"messages":[{"role":"user","content":"`), Buffer.from([0xc3, 0x28])]),
        /not valid UTF-8/,
      ],
      ['an empty file', '', /empty/],
      ['a blank line between examples', `${good}\n\n${good}\n`, /^line 2: blank line/],
      ['a line of whitespace', `${good}\n   \n`, /^line 2: blank line/],
      ['two objects on one line', `${good}${good}`, /^line 1: not valid JSON/],
      ['a line that is not JSON', `${good}\n{"messages": [`, /^line 2: not valid JSON/],
      ['a JSON array', `${good}\n[${good}]`, /^line 2: not a JSON object/],
      ['a JSON string', JSON.stringify(good), /^line 1: not a JSON object/],
      ['a missing messages key', '{}', /^line 1: messages: must be an array/],
      ['messages that are not an array', '{"messages": {"role": "user"}}', /^line 1: messages: must be an array/],
      ['empty messages', chat([]), /^line 1: messages: must not be empty/],
      ['a message that is not an object', chat(['hello', assistant()]), /^line 1: messages\[0\]: a message must be an object/],
      ['an unknown role', chat([{ role: 'human', content: 'hi' }, assistant()]), /^line 1: messages\[0\]\.role: must be one of/],
      ['the tool role', chat([user(), { role: 'tool', content: '42' }, assistant()]), /^line 1: messages\[1\]\.role/],
      ['a missing role', chat([{ content: 'hi' }, assistant()]), /^line 1: messages\[0\]\.role/],
      ['a missing content', chat([{ role: 'user' }, assistant()]), /^line 1: messages\[0\]\.content: must be a string/],
      ['null content', chat([user(null), assistant()]), /^line 1: messages\[0\]\.content: must be a string/],
      [
        'content parts instead of a string',
        chat([user([{ type: 'text', text: 'hi' }]), assistant()]),
        /messages\[0\]\.content: must be a string/,
      ],
      ['empty content', chat([user(), assistant('')]), /^line 1: messages\[1\]\.content: must not be empty/],
      ['an unknown key on a message', chat([{ ...user(), mood: 'happy' }, assistant()]), /^line 1: messages\[0\]\.mood: unknown key/],
      ['a weight on a user message', chat([{ ...user(), weight: 1 }, assistant()]), /^line 1: messages\[0\]\.weight: unknown key/],
      ['a weight other than 0 or 1', chat([user(), { ...assistant(), weight: 0.5 }]), /^line 1: messages\[1\]\.weight: must be 0 or 1/],
      ['no assistant message', chat([user(), user('again')]), /^line 1: messages: no assistant message/],
      [
        'a last message from the user',
        chat([user(), assistant(), user('and?')]),
        /^line 1: messages: the last message must be from the assistant/,
      ],
      ['an unknown key on the line', JSON.stringify({ messages: [user(), assistant()], id: 'x' }), /^line 1: id: unknown key/],
      ['a later bad line', `${good}\n${good}\n${chat([assistant(), user()])}\n`, /^line 3: /],
    ])('chat: %s', (_name, file, message) => {
      expect(() => checkFineTuningJsonl(file, 'chat')).toThrow(message);
    });

    it.each<[string, string, RegExp]>([
      ['a chat line', good, /^line 1: messages: unknown key/],
      [
        'a missing input',
        JSON.stringify({ preferred_output: [assistant()], non_preferred_output: [assistant()] }),
        /^line 1: input: must be an object/,
      ],
      ['input as a bare message list', preference({ input: [user()] }), /^line 1: input: must be an object/],
      ['input without messages', preference({ input: {} }), /^line 1: input\.messages: must be an array/],
      ['empty input messages', preference({ input: { messages: [] } }), /^line 1: input\.messages: must not be empty/],
      [
        'an input that ends with the assistant',
        preference({ input: { messages: [user(), assistant()] } }),
        /^line 1: input\.messages: the last message must be from the user/,
      ],
      [
        'an unknown role in the input',
        preference({ input: { messages: [{ role: 'developer', content: 'x' }, user()] } }),
        /^line 1: input\.messages\[0\]\.role/,
      ],
      ['empty input content', preference({ input: { messages: [user('')] } }), /^line 1: input\.messages\[0\]\.content: must not be empty/],
      [
        'an unknown key in input',
        preference({ input: { messages: [user()], temperature: 1 } }),
        /^line 1: input\.temperature: unknown key/,
      ],
      [
        'a missing preferred output',
        JSON.stringify({ input: { messages: [user()] }, non_preferred_output: [assistant()] }),
        /^line 1: preferred_output: must be an array of exactly one/,
      ],
      [
        'a preferred output that is one message, not an array',
        preference({ preferred_output: assistant() }),
        /^line 1: preferred_output: must be an array of exactly one/,
      ],
      [
        'two non-preferred outputs',
        preference({ non_preferred_output: [assistant('a'), assistant('b')] }),
        /^line 1: non_preferred_output: must be an array of exactly one/,
      ],
      [
        'no non-preferred output',
        preference({ non_preferred_output: [] }),
        /^line 1: non_preferred_output: must be an array of exactly one/,
      ],
      [
        'a preferred output from the user',
        preference({ preferred_output: [user()] }),
        /^line 1: preferred_output\[0\]\.role: must be "assistant"/,
      ],
      [
        'empty non-preferred content',
        preference({ non_preferred_output: [assistant('')] }),
        /^line 1: non_preferred_output\[0\]\.content: must not be empty/,
      ],
      [
        'non-string preferred content',
        preference({ preferred_output: [assistant(4)] }),
        /^line 1: preferred_output\[0\]\.content: must be a string/,
      ],
      [
        'an unknown key on an output message',
        preference({ preferred_output: [{ ...assistant(), weight: 1 }] }),
        /^line 1: preferred_output\[0\]\.weight: unknown key/,
      ],
      ['an unknown top-level key', preference({ score: 0.9 }), /^line 1: score: unknown key/],
      ['a later bad line', `${preference()}\n${preference({ non_preferred_output: [] })}`, /^line 2: /],
    ])('preference: %s', (_name, file, message) => {
      expect(() => checkFineTuningJsonl(file, 'preference')).toThrow(message);
    });
  });
});
