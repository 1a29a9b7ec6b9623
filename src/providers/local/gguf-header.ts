import { open, type FileHandle } from 'node:fs/promises';

/** What the gateway needs from a GGUF file before loading it; read without llama.cpp. */
export interface GgufHeader {
  readonly version: number;
  readonly architecture: string | undefined;
  readonly name: string | undefined;
  readonly contextLength: number | undefined;
  readonly hasChatTemplate: boolean;
  readonly tensorCount: number;
}

export class GgufFormatError extends Error {
  override readonly name = 'GgufFormatError';
}

const magic = 0x46554747; // "GGUF" little-endian
const valueSizes: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const stringType = 8;
const arrayType = 9;
// Bounds against corrupt lengths: no real key or string is larger.
const maxStringBytes = 64 * 1024 * 1024;
const maxKeyValues = 1_000_000;

/** Sequential reads over a file handle, a chunk at a time. */
class FileReader {
  private buffer = Buffer.alloc(0);
  private bufferStart = 0;
  private position = 0;

  constructor(
    private readonly file: FileHandle,
    private readonly size: number,
  ) {}

  private async ensure(length: number): Promise<void> {
    const end = this.position + length;
    if (end > this.size) throw new GgufFormatError(`file ends early: needs ${end} bytes, has ${this.size}`);
    if (end <= this.bufferStart + this.buffer.length) return;
    const chunk = Math.max(length, 1 << 20);
    const next = Buffer.alloc(Math.min(chunk, this.size - this.position));
    await this.file.read(next, 0, next.length, this.position);
    this.buffer = next;
    this.bufferStart = this.position;
  }

  private async take(length: number): Promise<Buffer> {
    await this.ensure(length);
    const offset = this.position - this.bufferStart;
    this.position += length;
    return this.buffer.subarray(offset, offset + length);
  }

  async uint32(): Promise<number> {
    return (await this.take(4)).readUInt32LE(0);
  }

  async uint64(): Promise<number> {
    const value = (await this.take(8)).readBigUInt64LE(0);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufFormatError('length out of range');
    return Number(value);
  }

  async string(): Promise<string> {
    const length = await this.uint64();
    if (length > maxStringBytes) throw new GgufFormatError(`string of ${length} bytes`);
    return (await this.take(length)).toString('utf8');
  }

  async skip(length: number): Promise<void> {
    if (this.position + length > this.size) throw new GgufFormatError('file ends early');
    this.position += length;
  }

  async scalar(type: number): Promise<number | bigint | boolean> {
    const bytes = await this.take(valueSizes[type]!);
    switch (type) {
      case 0:
        return bytes.readUInt8(0);
      case 1:
        return bytes.readInt8(0);
      case 2:
        return bytes.readUInt16LE(0);
      case 3:
        return bytes.readInt16LE(0);
      case 4:
        return bytes.readUInt32LE(0);
      case 5:
        return bytes.readInt32LE(0);
      case 6:
        return bytes.readFloatLE(0);
      case 7:
        return bytes.readUInt8(0) !== 0;
      case 10:
        return bytes.readBigUInt64LE(0);
      case 11:
        return bytes.readBigInt64LE(0);
      default:
        return bytes.readDoubleLE(0);
    }
  }
}

async function readValue(reader: FileReader, type: number): Promise<unknown> {
  if (type === stringType) return reader.string();
  if (type === arrayType) {
    const elementType = await reader.uint32();
    const count = await reader.uint64();
    if (elementType === stringType) {
      for (let index = 0; index < count; index += 1) await reader.skip(await reader.uint64());
    } else if (valueSizes[elementType] !== undefined) {
      await reader.skip(count * valueSizes[elementType]!);
    } else {
      throw new GgufFormatError(`unsupported array element type ${elementType}`);
    }
    return undefined;
  }
  if (valueSizes[type] === undefined) throw new GgufFormatError(`unknown value type ${type}`);
  return reader.scalar(type);
}

/** Reads the header and metadata of a GGUF file; throws GgufFormatError when it is not one. */
export async function readGgufHeader(filePath: string): Promise<GgufHeader> {
  const file = await open(filePath, 'r');
  try {
    const { size } = await file.stat();
    const reader = new FileReader(file, size);
    if ((await reader.uint32()) !== magic) throw new GgufFormatError('not a GGUF file (bad magic number)');
    const version = await reader.uint32();
    if (version < 2 || version > 3) throw new GgufFormatError(`unsupported GGUF version ${version}`);
    const tensorCount = await reader.uint64();
    const keyValueCount = await reader.uint64();
    if (keyValueCount > maxKeyValues) throw new GgufFormatError(`implausible metadata count ${keyValueCount}`);
    const metadata = new Map<string, unknown>();
    for (let index = 0; index < keyValueCount; index += 1) {
      const key = await reader.string();
      const type = await reader.uint32();
      metadata.set(key, await readValue(reader, type));
    }
    const architecture = stringOrUndefined(metadata.get('general.architecture'));
    const contextLength = architecture ? metadata.get(`${architecture}.context_length`) : undefined;
    return {
      version,
      architecture,
      name: stringOrUndefined(metadata.get('general.name')),
      contextLength:
        typeof contextLength === 'number' ? contextLength : typeof contextLength === 'bigint' ? Number(contextLength) : undefined,
      hasChatTemplate: typeof metadata.get('tokenizer.chat_template') === 'string',
      tensorCount,
    };
  } finally {
    await file.close();
  }
}

const stringOrUndefined = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
