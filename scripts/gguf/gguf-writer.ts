import { open, type FileHandle } from 'node:fs/promises';

/**
 * A small GGUF v3 writer: enough for generated test fixtures.
 * Layout: header, metadata key/values, tensor infos, padding to the alignment,
 * then the tensor data, each tensor starting at a multiple of the alignment.
 * The file is written through a streaming handle with a bounded buffer.
 */

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as little-endian uint32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types (gguf_type). */
export enum GgufValueType {
  Uint8 = 0,
  Int8 = 1,
  Uint16 = 2,
  Int16 = 3,
  Uint32 = 4,
  Int32 = 5,
  Float32 = 6,
  Bool = 7,
  String = 8,
  Array = 9,
  Uint64 = 10,
  Int64 = 11,
  Float64 = 12,
}

/** ggml tensor types this writer can encode. */
export enum GgmlTensorType {
  F32 = 0,
  F16 = 1,
  /** Blocks of 32 values: one f16 scale and 32 int8s. llama.cpp's batched CPU kernels are fastest on it. */
  Q8_0 = 8,
  /** Blocks of 32 values: one f16 scale and 32 4-bit values; repacked by llama.cpp into its GEMM kernels on x86 and ARM. */
  Q4_0 = 2,
}

const q8BlockValues = 32;
const q8BlockBytes = 34;
const q4BlockBytes = 18;

export type GgufMetadataValue =
  | { readonly type: 'uint32'; readonly value: number }
  | { readonly type: 'int32'; readonly value: number }
  | { readonly type: 'float32'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'string[]'; readonly value: readonly string[] }
  | { readonly type: 'int32[]'; readonly value: ArrayLike<number> }
  | { readonly type: 'float32[]'; readonly value: ArrayLike<number> };

export interface GgufMetadataEntry {
  readonly key: string;
  readonly value: GgufMetadataValue;
}

/** Produces a tensor's values in order (row-major over ggml dims, ne0 fastest), in one or more chunks. */
export type GgufTensorData = () => Iterable<Float32Array>;

export interface GgufTensor {
  readonly name: string;
  /** ggml order: ne0 (the contiguous dimension) first. */
  readonly dims: readonly number[];
  readonly type: GgmlTensorType;
  readonly data: GgufTensorData;
}

export interface GgufFile {
  readonly metadata: readonly GgufMetadataEntry[];
  readonly tensors: readonly GgufTensor[];
  /** Defaults to `general.alignment` from the metadata when present, else 32. */
  readonly alignment?: number;
}

export interface GgufWriteResult {
  readonly bytes: number;
  readonly tensorDataOffset: number;
}

export function elementCount(dims: readonly number[]): number {
  return dims.reduce((product, dim) => product * dim, 1);
}

export function tensorByteSize(tensor: Pick<GgufTensor, 'dims' | 'type'>): number {
  const count = elementCount(tensor.dims);
  switch (tensor.type) {
    case GgmlTensorType.F32:
      return count * 4;
    case GgmlTensorType.F16:
      return count * 2;
    case GgmlTensorType.Q8_0:
      if (tensor.dims[0]! % q8BlockValues !== 0) throw new RangeError(`Q8_0 needs ne0 divisible by ${q8BlockValues}`);
      return (count / q8BlockValues) * q8BlockBytes;
    case GgmlTensorType.Q4_0:
      if (tensor.dims[0]! % q8BlockValues !== 0) throw new RangeError(`Q4_0 needs ne0 divisible by ${q8BlockValues}`);
      return (count / q8BlockValues) * q4BlockBytes;
  }
}

function alignUp(value: number, alignment: number): number {
  return Math.ceil(value / alignment) * alignment;
}

const float32Scratch = new Float32Array(1);
const uint32Scratch = new Uint32Array(float32Scratch.buffer);

/** IEEE 754 binary32 → binary16 bits, round to nearest even. */
export function float32ToFloat16Bits(value: number): number {
  float32Scratch[0] = value;
  const bits = uint32Scratch[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exponent = (bits >>> 23) & 0xff;
  let mantissa = bits & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 : 0);
  const halfExponent = exponent - 127 + 15;
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) {
    if (halfExponent < -10) return sign;
    mantissa |= 0x800000;
    const shift = 14 - halfExponent;
    let half = mantissa >>> shift;
    const remainder = mantissa & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (remainder > halfway || (remainder === halfway && (half & 1) !== 0)) half += 1;
    return sign | half;
  }
  let half = (halfExponent << 10) | (mantissa >>> 13);
  const remainder = mantissa & 0x1fff;
  if (remainder > 0x1000 || (remainder === 0x1000 && (half & 1) !== 0)) half += 1;
  return sign | half; // a mantissa carry rolls into the exponent (up to infinity), as it should
}

/** Buffered sequential writer over a file handle. */
class StreamWriter {
  private readonly buffer: Buffer;
  private used = 0;
  private written = 0;

  constructor(
    private readonly file: FileHandle,
    capacity = 1 << 20,
  ) {
    this.buffer = Buffer.alloc(capacity);
  }

  get position(): number {
    return this.written + this.used;
  }

  private async reserve(length: number): Promise<void> {
    if (this.used + length > this.buffer.length) await this.flush();
  }

  async flush(): Promise<void> {
    let offset = 0;
    while (offset < this.used) {
      const { bytesWritten } = await this.file.write(this.buffer, offset, this.used - offset);
      offset += bytesWritten;
    }
    this.written += this.used;
    this.used = 0;
  }

  async bytes(data: Uint8Array): Promise<void> {
    if (data.length > this.buffer.length) {
      await this.flush();
      let offset = 0;
      while (offset < data.length) {
        const { bytesWritten } = await this.file.write(data, offset, data.length - offset);
        offset += bytesWritten;
      }
      this.written += data.length;
      return;
    }
    await this.reserve(data.length);
    this.buffer.set(data, this.used);
    this.used += data.length;
  }

  async uint32(value: number): Promise<void> {
    await this.reserve(4);
    this.used = this.buffer.writeUInt32LE(value, this.used);
  }

  async int32(value: number): Promise<void> {
    await this.reserve(4);
    this.used = this.buffer.writeInt32LE(value, this.used);
  }

  async uint64(value: number): Promise<void> {
    await this.reserve(8);
    this.used = this.buffer.writeBigUInt64LE(BigInt(value), this.used);
  }

  async float32(value: number): Promise<void> {
    await this.reserve(4);
    this.used = this.buffer.writeFloatLE(value, this.used);
  }

  async uint8(value: number): Promise<void> {
    await this.reserve(1);
    this.used = this.buffer.writeUInt8(value, this.used);
  }

  async string(value: string): Promise<void> {
    const encoded = Buffer.from(value, 'utf8');
    await this.uint64(encoded.length);
    await this.bytes(encoded);
  }

  async padTo(alignment: number): Promise<void> {
    const padding = alignUp(this.position, alignment) - this.position;
    if (padding > 0) await this.bytes(new Uint8Array(padding));
  }
}

async function writeMetadataValue(out: StreamWriter, value: GgufMetadataValue): Promise<void> {
  switch (value.type) {
    case 'uint32':
      await out.uint32(GgufValueType.Uint32);
      return out.uint32(value.value);
    case 'int32':
      await out.uint32(GgufValueType.Int32);
      return out.int32(value.value);
    case 'float32':
      await out.uint32(GgufValueType.Float32);
      return out.float32(value.value);
    case 'bool':
      await out.uint32(GgufValueType.Bool);
      return out.uint8(value.value ? 1 : 0);
    case 'string':
      await out.uint32(GgufValueType.String);
      return out.string(value.value);
    case 'string[]':
      await out.uint32(GgufValueType.Array);
      await out.uint32(GgufValueType.String);
      await out.uint64(value.value.length);
      for (const item of value.value) await out.string(item);
      return;
    case 'int32[]':
      await out.uint32(GgufValueType.Array);
      await out.uint32(GgufValueType.Int32);
      await out.uint64(value.value.length);
      for (let index = 0; index < value.value.length; index += 1) await out.int32(value.value[index]!);
      return;
    case 'float32[]':
      await out.uint32(GgufValueType.Array);
      await out.uint32(GgufValueType.Float32);
      await out.uint64(value.value.length);
      for (let index = 0; index < value.value.length; index += 1) await out.float32(value.value[index]!);
      return;
  }
}

function encodeChunk(chunk: Float32Array, type: GgmlTensorType): Uint8Array {
  if (type === GgmlTensorType.F32) {
    // Copy into a fresh little-endian buffer (all supported hosts are little-endian, but be explicit).
    const bytes = Buffer.alloc(chunk.length * 4);
    for (let index = 0; index < chunk.length; index += 1) bytes.writeFloatLE(chunk[index]!, index * 4);
    return bytes;
  }
  if (type === GgmlTensorType.Q8_0) return encodeQ8_0(chunk);
  if (type === GgmlTensorType.Q4_0) return encodeQ4_0(chunk);
  const bytes = Buffer.alloc(chunk.length * 2);
  for (let index = 0; index < chunk.length; index += 1) bytes.writeUInt16LE(float32ToFloat16Bits(chunk[index]!), index * 2);
  return bytes;
}

/** ggml's reference Q4_0 quantisation: the value of largest magnitude maps to -8; nibbles j and j+16 share a byte. */
function encodeQ4_0(chunk: Float32Array): Uint8Array {
  if (chunk.length % q8BlockValues !== 0) throw new RangeError(`Q4_0 chunks must hold whole blocks of ${q8BlockValues}`);
  const blocks = chunk.length / q8BlockValues;
  const bytes = Buffer.alloc(blocks * q4BlockBytes);
  const half = q8BlockValues / 2;
  for (let block = 0; block < blocks; block += 1) {
    const start = block * q8BlockValues;
    let extreme = 0;
    for (let index = 0; index < q8BlockValues; index += 1) {
      const value = chunk[start + index]!;
      if (Math.abs(value) > Math.abs(extreme)) extreme = value;
    }
    const scale = extreme / -8;
    const inverse = scale === 0 ? 0 : 1 / scale;
    const offset = block * q4BlockBytes;
    bytes.writeUInt16LE(float32ToFloat16Bits(scale), offset);
    const nibble = (value: number): number => Math.min(15, Math.trunc(value * inverse + 8.5));
    for (let index = 0; index < half; index += 1) {
      bytes[offset + 2 + index] = nibble(chunk[start + index]!) | (nibble(chunk[start + half + index]!) << 4);
    }
  }
  return bytes;
}

/** ggml's reference Q8_0 quantisation: scale = max|x| / 127, values rounded to int8. */
function encodeQ8_0(chunk: Float32Array): Uint8Array {
  if (chunk.length % q8BlockValues !== 0) throw new RangeError(`Q8_0 chunks must hold whole blocks of ${q8BlockValues}`);
  const blocks = chunk.length / q8BlockValues;
  const bytes = Buffer.alloc(blocks * q8BlockBytes);
  for (let block = 0; block < blocks; block += 1) {
    const start = block * q8BlockValues;
    let maxAbs = 0;
    for (let index = 0; index < q8BlockValues; index += 1) maxAbs = Math.max(maxAbs, Math.abs(chunk[start + index]!));
    const scale = maxAbs / 127;
    const inverse = scale === 0 ? 0 : 1 / scale;
    const offset = block * q8BlockBytes;
    bytes.writeUInt16LE(float32ToFloat16Bits(scale), offset);
    for (let index = 0; index < q8BlockValues; index += 1) {
      bytes.writeInt8(Math.round(chunk[start + index]! * inverse), offset + 2 + index);
    }
  }
  return bytes;
}

function resolveAlignment(file: GgufFile): number {
  if (file.alignment !== undefined) return file.alignment;
  const entry = file.metadata.find((item) => item.key === 'general.alignment');
  if (entry && (entry.value.type === 'uint32' || entry.value.type === 'int32')) return entry.value.value;
  return GGUF_DEFAULT_ALIGNMENT;
}

/** Writes a GGUF v3 file; tensor data is pulled from each tensor's generator as it is written. */
export async function writeGguf(filePath: string, file: GgufFile): Promise<GgufWriteResult> {
  const alignment = resolveAlignment(file);
  if (!Number.isInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
    throw new Error(`alignment must be a positive multiple of 8, got ${alignment}`);
  }
  const keys = new Set<string>();
  for (const entry of file.metadata) {
    if (keys.has(entry.key)) throw new Error(`duplicate metadata key ${entry.key}`);
    keys.add(entry.key);
  }

  // Offsets of each tensor's data, relative to the start of the data section.
  const offsets: number[] = [];
  let dataSize = 0;
  for (const tensor of file.tensors) {
    if (tensor.dims.length < 1 || tensor.dims.length > 4) throw new Error(`${tensor.name}: 1 to 4 dims`);
    dataSize = alignUp(dataSize, alignment);
    offsets.push(dataSize);
    dataSize += tensorByteSize(tensor);
  }

  const handle = await open(filePath, 'w');
  try {
    const out = new StreamWriter(handle);
    await out.uint32(GGUF_MAGIC);
    await out.uint32(GGUF_VERSION);
    await out.uint64(file.tensors.length);
    await out.uint64(file.metadata.length);
    for (const entry of file.metadata) {
      await out.string(entry.key);
      await writeMetadataValue(out, entry.value);
    }
    for (const [index, tensor] of file.tensors.entries()) {
      await out.string(tensor.name);
      await out.uint32(tensor.dims.length);
      for (const dim of tensor.dims) await out.uint64(dim);
      await out.uint32(tensor.type);
      await out.uint64(offsets[index]!);
    }
    await out.padTo(alignment);
    const tensorDataOffset = out.position;

    for (const [index, tensor] of file.tensors.entries()) {
      const start = tensorDataOffset + offsets[index]!;
      if (out.position < start) await out.bytes(new Uint8Array(start - out.position));
      const expected = elementCount(tensor.dims);
      let count = 0;
      for (const chunk of tensor.data()) {
        count += chunk.length;
        if (count > expected) throw new Error(`${tensor.name}: generator produced more than ${expected} values`);
        await out.bytes(encodeChunk(chunk, tensor.type));
      }
      if (count !== expected) throw new Error(`${tensor.name}: generator produced ${count} of ${expected} values`);
    }
    // Pad the last tensor too, as gguf-py does, so the data section is a multiple of the alignment.
    await out.padTo(alignment);
    await out.flush();
    return { bytes: out.position, tensorDataOffset };
  } finally {
    await handle.close();
  }
}
