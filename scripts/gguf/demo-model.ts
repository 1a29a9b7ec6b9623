import { trainByteLevelBpe, unicodeToBytes } from './byte-level-bpe';
import { GgmlTensorType, elementCount, writeGguf, type GgufMetadataEntry, type GgufTensor } from './gguf-writer';

/**
 * A generated llama-architecture GGUF model with a byte-level BPE vocabulary and deterministic
 * random weights: a fixture that llama.cpp loads and runs like a real model, with no download.
 */

export interface DemoModelOptions {
  readonly embeddingLength: number;
  readonly blockCount: number;
  readonly headCount: number;
  readonly headCountKv: number;
  readonly feedForwardLength: number;
  readonly contextLength: number;
  /** BPE merges to learn from the embedded corpus. */
  readonly merges: number;
  readonly seed: number;
  readonly chatTemplate?: 'chatml' | undefined;
  /** general.name */
  readonly name: string;
  /**
   * Gain on the end-of-text token's output row instead of the suppression: above ~3 the model often
   * stops by itself, for fixtures that must finish with `stop` rather than `length`.
   */
  readonly endOfTextGain?: number;
  /** Storage of the weight matrices (norms stay f32): q8_0 is what llama.cpp's batched CPU kernels run fastest. */
  readonly weightType?: 'f32' | 'f16' | 'q8_0' | 'q4_0';
}

export type DemoModelPreset = 'tiny' | 'bench';

export const demoModelPresets: Readonly<Record<DemoModelPreset, DemoModelOptions>> = {
  tiny: {
    embeddingLength: 64,
    blockCount: 2,
    headCount: 4,
    headCountKv: 4,
    feedForwardLength: 192,
    contextLength: 512,
    merges: 250,
    seed: 20240601,
    name: 'llmop-demo-tiny',
  },
  bench: {
    // Wide and shallow, in f16: on CPUs whose caches hold the whole model, decoding is compute-bound,
    // and wide matrices are where batched decoding gains most over one sequence at a time.
    embeddingLength: 1024,
    blockCount: 2,
    headCount: 16,
    headCountKv: 16,
    feedForwardLength: 2816,
    contextLength: 1024,
    merges: 250,
    seed: 20240602,
    name: 'llmop-demo-bench',
    weightType: 'f16',
  },
};

/** The standard ChatML Jinja template. */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export const BOS_TOKEN = '<|begin_of_text|>';
export const EOS_TOKEN = '<|end_of_text|>';
export const IM_START_TOKEN = '<|im_start|>';
export const IM_END_TOKEN = '<|im_end|>';

const TOKEN_TYPE_NORMAL = 1;
const TOKEN_TYPE_CONTROL = 3;

/**
 * Weight scales, as multiples of 1/sqrt(fan_in) (fan_in = ne0, the input dimension).
 * Tuned by hand so that greedy output depends on the prompt and does not lock onto one token:
 * the output projection gives logits with a standard deviation of about `output`, and
 * larger query/key weights make attention (and so the output) depend on the context.
 */
export const WEIGHT_GAINS = {
  tokenEmbedding: 1, // absolute standard deviation (the embedding is normalised before use)
  attentionQueryKey: 2,
  attentionValueOutput: 1,
  feedForward: 1,
  output: 3,
  /**
   * Extra factor on the output rows of tokens that should (almost) never be generated: the special
   * tokens, and byte tokens that are not printable ASCII or a newline (control bytes, and the
   * fragments of multi-byte UTF-8 characters). Their logits stay near 0 while the others have a standard deviation
   * of about `output`, so greedy output is readable text that runs to maxTokens rather than
   * stopping at a random end-of-text token.
   */
  suppressedOutput: 0.05,
} as const;

/** mulberry32: a small, fast, seeded 32-bit PRNG returning values in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** FNV-1a over the seed and a string, so each tensor has its own stream regardless of order. */
function tensorSeed(seed: number, name: string): number {
  let hash = 0x811c9dc5 ^ (seed >>> 0);
  hash = Math.imul(hash, 0x01000193);
  for (const byte of Buffer.from(name, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

const CHUNK = 1 << 16;

/** Normal(0, std²) values from mulberry32 + Box-Muller, in chunks. */
function* gaussian(seed: number, count: number, std: number): Generator<Float32Array> {
  const random = mulberry32(seed);
  let spare: number | undefined;
  for (let start = 0; start < count; start += CHUNK) {
    const chunk = new Float32Array(Math.min(CHUNK, count - start));
    for (let index = 0; index < chunk.length; index += 1) {
      if (spare !== undefined) {
        chunk[index] = spare * std;
        spare = undefined;
        continue;
      }
      const u1 = 1 - random(); // (0, 1]: keeps log finite
      const u2 = random();
      const radius = Math.sqrt(-2 * Math.log(u1));
      chunk[index] = radius * Math.cos(2 * Math.PI * u2) * std;
      spare = radius * Math.sin(2 * Math.PI * u2);
    }
    yield chunk;
  }
}

/** Multiplies each row (rowLength consecutive values) of a chunked stream by its gain. */
function* scaleRows(source: Iterable<Float32Array>, rowLength: number, rowGains: readonly number[]): Generator<Float32Array> {
  let position = 0;
  for (const chunk of source) {
    for (let index = 0; index < chunk.length; index += 1, position += 1) {
      chunk[index]! *= rowGains[Math.floor(position / rowLength)]!;
    }
    yield chunk;
  }
}

function* constant(value: number, count: number): Generator<Float32Array> {
  for (let start = 0; start < count; start += CHUNK) yield new Float32Array(Math.min(CHUNK, count - start)).fill(value);
}

export interface DemoVocabulary {
  readonly tokens: string[];
  readonly tokenTypes: number[];
  readonly merges: string[];
  readonly bosTokenId: number;
  readonly eosTokenId: number;
}

/** Whether a vocabulary entry should be kept out of generated text (see WEIGHT_GAINS.suppressedOutput). */
function isSuppressedOutput(token: string, tokenType: number, byteOf: Map<string, number>): boolean {
  if (tokenType !== TOKEN_TYPE_NORMAL) return true;
  return Array.from(token).some((character) => {
    const byte = byteOf.get(character);
    return byte === undefined || !(byte === 0x0a || (byte >= 0x20 && byte <= 0x7e));
  });
}

export function buildDemoVocabulary(options: Pick<DemoModelOptions, 'merges' | 'chatTemplate'>): DemoVocabulary {
  const bpe = trainByteLevelBpe({ merges: options.merges });
  const tokens = [...bpe.tokens];
  const tokenTypes = tokens.map(() => TOKEN_TYPE_NORMAL);
  const addSpecial = (text: string): number => {
    tokens.push(text);
    tokenTypes.push(TOKEN_TYPE_CONTROL);
    return tokens.length - 1;
  };
  const bosTokenId = addSpecial(BOS_TOKEN);
  const eosTokenId = addSpecial(EOS_TOKEN);
  if (options.chatTemplate === 'chatml') {
    addSpecial(IM_START_TOKEN);
    addSpecial(IM_END_TOKEN);
  }
  return { tokens, tokenTypes, merges: bpe.merges, bosTokenId, eosTokenId };
}

function validate(options: DemoModelOptions): void {
  const positive = ['embeddingLength', 'blockCount', 'headCount', 'headCountKv', 'feedForwardLength', 'contextLength'] as const;
  for (const key of positive) {
    if (!Number.isInteger(options[key]) || options[key] <= 0) throw new Error(`${key} must be a positive integer`);
  }
  if (!Number.isInteger(options.merges) || options.merges < 0) throw new Error('merges must be a non-negative integer');
  if (options.embeddingLength % options.headCount !== 0) throw new Error('embeddingLength must divide by headCount');
  if (options.headCount % options.headCountKv !== 0) throw new Error('headCount must divide by headCountKv');
  if ((options.embeddingLength / options.headCount) % 2 !== 0) throw new Error('head dimension must be even (RoPE)');
}

/** Writes the model; the same options always give a byte-identical file. */
export async function writeDemoModel(filePath: string, options: DemoModelOptions): Promise<{ parameters: number; bytes: number }> {
  validate(options);
  const vocabulary = buildDemoVocabulary(options);
  const nVocab = vocabulary.tokens.length;
  const nEmbd = options.embeddingLength;
  const nFf = options.feedForwardLength;
  const headDim = nEmbd / options.headCount;
  const nEmbdKv = headDim * options.headCountKv;

  const metadata: GgufMetadataEntry[] = [
    { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
    { key: 'general.name', value: { type: 'string', value: options.name } },
    // llama_ftype: 0 all f32, 1 mostly f16, 2 mostly q4_0, 7 mostly q8_0.
    { key: 'general.file_type', value: { type: 'uint32', value: { f32: 0, f16: 1, q4_0: 2, q8_0: 7 }[options.weightType ?? 'f32'] } },
    { key: 'general.alignment', value: { type: 'uint32', value: 32 } },
    { key: 'llama.context_length', value: { type: 'uint32', value: options.contextLength } },
    { key: 'llama.embedding_length', value: { type: 'uint32', value: nEmbd } },
    { key: 'llama.block_count', value: { type: 'uint32', value: options.blockCount } },
    { key: 'llama.feed_forward_length', value: { type: 'uint32', value: nFf } },
    { key: 'llama.attention.head_count', value: { type: 'uint32', value: options.headCount } },
    { key: 'llama.attention.head_count_kv', value: { type: 'uint32', value: options.headCountKv } },
    { key: 'llama.attention.layer_norm_rms_epsilon', value: { type: 'float32', value: 1e-5 } },
    { key: 'llama.rope.dimension_count', value: { type: 'uint32', value: headDim } },
    { key: 'llama.rope.freq_base', value: { type: 'float32', value: 10000 } },
    { key: 'llama.vocab_size', value: { type: 'uint32', value: nVocab } },
    { key: 'tokenizer.ggml.model', value: { type: 'string', value: 'gpt2' } },
    { key: 'tokenizer.ggml.pre', value: { type: 'string', value: 'default' } },
    { key: 'tokenizer.ggml.tokens', value: { type: 'string[]', value: vocabulary.tokens } },
    { key: 'tokenizer.ggml.token_type', value: { type: 'int32[]', value: vocabulary.tokenTypes } },
    { key: 'tokenizer.ggml.merges', value: { type: 'string[]', value: vocabulary.merges } },
    { key: 'tokenizer.ggml.bos_token_id', value: { type: 'uint32', value: vocabulary.bosTokenId } },
    { key: 'tokenizer.ggml.eos_token_id', value: { type: 'uint32', value: vocabulary.eosTokenId } },
    { key: 'tokenizer.ggml.add_bos_token', value: { type: 'bool', value: true } },
  ];
  if (options.chatTemplate === 'chatml') {
    metadata.push({ key: 'tokenizer.chat_template', value: { type: 'string', value: CHATML_TEMPLATE } });
  }

  const tensors: GgufTensor[] = [];
  const matrixType = { f32: GgmlTensorType.F32, f16: GgmlTensorType.F16, q8_0: GgmlTensorType.Q8_0, q4_0: GgmlTensorType.Q4_0 }[
    options.weightType ?? 'f32'
  ];
  const random = (name: string, dims: number[], std: number): void => {
    const count = elementCount(dims);
    const seed = tensorSeed(options.seed, name);
    tensors.push({ name, dims, type: matrixType, data: () => gaussian(seed, count, std) });
  };
  const ones = (name: string, dims: number[]): void => {
    const count = elementCount(dims);
    tensors.push({ name, dims, type: GgmlTensorType.F32, data: () => constant(1, count) });
  };
  const fanIn = (n: number): number => 1 / Math.sqrt(n);

  random('token_embd.weight', [nEmbd, nVocab], WEIGHT_GAINS.tokenEmbedding);
  ones('output_norm.weight', [nEmbd]);
  const outputSeed = tensorSeed(options.seed, 'output.weight');
  const byteOf = unicodeToBytes();
  const outputRowGains = vocabulary.tokens.map((token, id) => {
    if (token === EOS_TOKEN && options.endOfTextGain !== undefined) return options.endOfTextGain;
    return isSuppressedOutput(token, vocabulary.tokenTypes[id]!, byteOf) ? WEIGHT_GAINS.suppressedOutput : 1;
  });
  tensors.push({
    name: 'output.weight',
    dims: [nEmbd, nVocab],
    type: matrixType,
    data: () => scaleRows(gaussian(outputSeed, nEmbd * nVocab, WEIGHT_GAINS.output * fanIn(nEmbd)), nEmbd, outputRowGains),
  });
  for (let block = 0; block < options.blockCount; block += 1) {
    const prefix = `blk.${block}.`;
    ones(`${prefix}attn_norm.weight`, [nEmbd]);
    random(`${prefix}attn_q.weight`, [nEmbd, nEmbd], WEIGHT_GAINS.attentionQueryKey * fanIn(nEmbd));
    random(`${prefix}attn_k.weight`, [nEmbd, nEmbdKv], WEIGHT_GAINS.attentionQueryKey * fanIn(nEmbd));
    random(`${prefix}attn_v.weight`, [nEmbd, nEmbdKv], WEIGHT_GAINS.attentionValueOutput * fanIn(nEmbd));
    random(`${prefix}attn_output.weight`, [nEmbd, nEmbd], WEIGHT_GAINS.attentionValueOutput * fanIn(nEmbd));
    ones(`${prefix}ffn_norm.weight`, [nEmbd]);
    random(`${prefix}ffn_gate.weight`, [nEmbd, nFf], WEIGHT_GAINS.feedForward * fanIn(nEmbd));
    random(`${prefix}ffn_up.weight`, [nEmbd, nFf], WEIGHT_GAINS.feedForward * fanIn(nEmbd));
    random(`${prefix}ffn_down.weight`, [nFf, nEmbd], WEIGHT_GAINS.feedForward * fanIn(nFf));
  }

  const parameters = tensors.reduce((sum, tensor) => sum + elementCount(tensor.dims), 0);
  const { bytes } = await writeGguf(filePath, { metadata, tensors });
  return { parameters, bytes };
}
