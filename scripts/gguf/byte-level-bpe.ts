/**
 * GPT-2 style byte-level BPE: the bytes→unicode mapping and a tiny deterministic trainer
 * over an embedded English corpus. Used to give generated GGUF fixtures a real
 * (`tokenizer.ggml.model = "gpt2"`) vocabulary that llama.cpp tokenizes like any other.
 */

/** A few paragraphs of plain English; the trainer learns its merges from this text. */
export const DEMO_CORPUS = `
A language model reads a sequence of tokens and predicts the next one. The tokens are pieces of text: whole words when the words are common, and smaller pieces when they are not. A model that has seen a great deal of text learns which pieces tend to follow which, and it can then continue a sentence, answer a question, or summarise a document. The model does not know the world the way a person does; it knows the patterns in the text it was trained on. When the weights of a model are random, as they are in this test fixture, the model still runs, but what it writes is noise.

The gateway serves models through GraphQL. A client sends a query or a mutation that names the model, the prompt, and the options for generation, such as the temperature, the number of tokens, and the stop sequences. The server checks the request against the schema, resolves each field, and returns the text together with the usage: how many tokens were in the prompt and how many were generated. Because GraphQL is typed, a client knows in advance which fields exist and what each of them returns, and the same schema can be served over REST as well.

The weather today is mild in the morning and warmer in the afternoon. There is a light wind from the west, and the sky is mostly clear, with a few clouds over the hills. In the evening the temperature will fall, and there may be some rain after midnight. Tomorrow will be cooler, with showers in the north and sunny spells in the south. People who are going out should take a coat, because the weather can change quickly at this time of the year.

Training a model takes a large amount of data and a great deal of computation. The text is split into tokens, the tokens are turned into vectors, and the vectors pass through many layers of attention and feed forward networks. At each step the model compares its prediction with the token that actually came next, and the weights are adjusted a little so that the next prediction is better. After many steps the model has learned something about the language, and it can be evaluated on text that it has not seen before.

When a request arrives, the server looks up the model in its catalog, loads the weights if they are not already in memory, and creates a context for the conversation. The prompt is tokenized, the tokens are evaluated, and new tokens are sampled one at a time until the model produces an end of text token, reaches the limit on the number of tokens, or meets one of the stop sequences. The generated tokens are then turned back into text and returned to the client, and the context is released so that the next request can use it.
`;

/**
 * GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to code points from 256 up,
 * so that every byte has a visible, whitespace-free character. Index = byte value.
 */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  const add = (from: number, to: number): void => {
    for (let code = from; code <= to; code += 1) printable.push(code);
  };
  add(0x21, 0x7e); // '!'..'~'
  add(0xa1, 0xac); // '¡'..'¬'
  add(0xae, 0xff); // '®'..'ÿ'
  const mapping = new Array<string>(256);
  const isPrintable = new Set(printable);
  let next = 0;
  for (let byte = 0; byte < 256; byte += 1) {
    mapping[byte] = String.fromCodePoint(isPrintable.has(byte) ? byte : 256 + next++);
  }
  return mapping;
}

/** The inverse of {@link bytesToUnicode}: mapped character → byte value. */
export function unicodeToBytes(): Map<string, number> {
  return new Map(bytesToUnicode().map((character, byte) => [character, byte]));
}

const byteMapping = bytesToUnicode();

/** UTF-8 bytes of `text`, each as its mapped character ("Ġ" for a space, "Ċ" for a newline). */
export function toByteLevel(text: string): string[] {
  return Array.from(Buffer.from(text, 'utf8'), (byte) => byteMapping[byte]!);
}

/** Mapped characters back to text (the inverse of joining {@link toByteLevel}). */
export function fromByteLevel(tokens: string, mapping: Map<string, number> = unicodeToBytes()): string {
  const bytes = Array.from(tokens, (character) => {
    const byte = mapping.get(character);
    if (byte === undefined) throw new Error(`not a byte-level character: ${JSON.stringify(character)}`);
    return byte;
  });
  return Buffer.from(bytes).toString('utf8');
}

/**
 * GPT-2's pre-tokenizer: words with their leading space attached ("Ġword"), numbers,
 * punctuation runs and whitespace runs.
 */
const preTokenPattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export function preTokenize(text: string): string[] {
  return text.match(preTokenPattern) ?? [];
}

export interface ByteLevelBpeOptions {
  /** Text to learn from; defaults to {@link DEMO_CORPUS}. */
  readonly corpus?: string;
  /** How many merges to learn at most (fewer when no pair occurs at least `minFrequency` times). */
  readonly merges?: number;
  /** A pair must occur this many times to be merged; default 2. */
  readonly minFrequency?: number;
}

export interface ByteLevelBpe {
  /** The 256 byte tokens (index = byte value, in mapped form), then each new merged token. */
  readonly tokens: string[];
  /** Merges in rank order, each "left right" in mapped form. */
  readonly merges: string[];
}

export const DEFAULT_MERGES = 250;

/**
 * Learns byte-level BPE merges, deterministically: at each step the most frequent adjacent pair
 * wins; ties go to the pair whose left then right symbol sorts first (by UTF-16 code units).
 */
export function trainByteLevelBpe(options: ByteLevelBpeOptions = {}): ByteLevelBpe {
  const corpus = options.corpus ?? DEMO_CORPUS;
  const maxMerges = options.merges ?? DEFAULT_MERGES;
  const minFrequency = options.minFrequency ?? 2;

  // Unique pre-tokenized words with their counts, in first-seen order.
  const wordCounts = new Map<string, number>();
  for (const word of preTokenize(corpus)) wordCounts.set(word, (wordCounts.get(word) ?? 0) + 1);
  const words = [...wordCounts].map(([word, count]) => ({ symbols: toByteLevel(word), count }));

  const tokens = [...byteMapping];
  const known = new Set(tokens);
  const merges: string[] = [];

  while (merges.length < maxMerges) {
    const pairCounts = new Map<string, { left: string; right: string; count: number }>();
    for (const { symbols, count } of words) {
      for (let index = 0; index + 1 < symbols.length; index += 1) {
        const left = symbols[index]!;
        const right = symbols[index + 1]!;
        const key = `${left} ${right}`;
        const entry = pairCounts.get(key);
        if (entry) entry.count += count;
        else pairCounts.set(key, { left, right, count });
      }
    }
    let best: { left: string; right: string; count: number } | undefined;
    for (const candidate of pairCounts.values()) {
      if (
        !best ||
        candidate.count > best.count ||
        (candidate.count === best.count && (candidate.left < best.left || (candidate.left === best.left && candidate.right < best.right)))
      ) {
        best = candidate;
      }
    }
    if (!best || best.count < minFrequency) break;

    const merged = best.left + best.right;
    merges.push(`${best.left} ${best.right}`);
    if (!known.has(merged)) {
      known.add(merged);
      tokens.push(merged);
    }
    for (const word of words) {
      const { symbols } = word;
      const next: string[] = [];
      for (let index = 0; index < symbols.length; index += 1) {
        if (index + 1 < symbols.length && symbols[index] === best.left && symbols[index + 1] === best.right) {
          next.push(merged);
          index += 1;
        } else {
          next.push(symbols[index]!);
        }
      }
      word.symbols = next;
    }
  }
  return { tokens, merges };
}

/**
 * Reference encoder for the learned merges (lowest-rank pair first, as GPT-2 does), for tests:
 * returns token strings in mapped form.
 */
export function encodeWithMerges(text: string, bpe: ByteLevelBpe): string[] {
  const ranks = new Map(bpe.merges.map((merge, rank) => [merge, rank]));
  const output: string[] = [];
  for (const word of preTokenize(text)) {
    let symbols = toByteLevel(word);
    for (;;) {
      let bestRank = Infinity;
      let bestIndex = -1;
      for (let index = 0; index + 1 < symbols.length; index += 1) {
        const rank = ranks.get(`${symbols[index]} ${symbols[index + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          bestIndex = index;
        }
      }
      if (bestIndex < 0) break;
      const left = symbols[bestIndex]!;
      const right = symbols[bestIndex + 1]!;
      const next: string[] = [];
      for (let index = 0; index < symbols.length; index += 1) {
        if (index + 1 < symbols.length && symbols[index] === left && symbols[index + 1] === right) {
          next.push(left + right);
          index += 1;
        } else {
          next.push(symbols[index]!);
        }
      }
      symbols = next;
    }
    output.push(...symbols);
  }
  return output;
}
