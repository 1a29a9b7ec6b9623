import { type FSWatcher, watch } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { readGgufHeader, type GgufHeader } from './gguf-header';
import { readModelCard, type ModelCard } from './model-card';

export interface LocalModelFile {
  /** The file name without `.gguf`. */
  readonly id: string;
  readonly path: string;
  /** Changes when the file is replaced, so cached facts about it are dropped. */
  readonly version: string;
  readonly header?: GgufHeader;
  readonly card?: ModelCard;
  /** Why the file cannot serve (bad header, broken card). */
  readonly problem?: string;
}

const ggufSuffix = '.gguf';

/** Lists the directory's GGUF models, reading each header once per file version. */
export class ModelDirectory {
  private readonly headers = new Map<string, { version: string; header?: GgufHeader; problem?: string }>();
  /** The directory's file names while a watcher keeps them true; dropped on every change. */
  private names: Promise<ReadonlySet<string>> | undefined;
  private watcher: FSWatcher | undefined;

  constructor(readonly directory: string) {}

  /** Stops watching the directory. */
  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    this.names = undefined;
  }

  async scan(): Promise<LocalModelFile[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const models = await Promise.all(
      names.filter((name) => name.endsWith(ggufSuffix) && !name.startsWith('.')).map((name) => this.describe(name)),
    );
    return models
      .filter((model): model is LocalModelFile => model !== undefined)
      .sort((left, right) => (left.id < right.id ? -1 : left.id > right.id ? 1 : 0));
  }

  /**
   * One model by id: the per-request path. Every generation asks the local provider first, so an id
   * that is not a file here (an endpoint's model) is answered from the watched list of names
   * instead of a failing stat per request.
   */
  async find(id: string): Promise<LocalModelFile | undefined> {
    if (id.includes('/') || id.includes(path.sep) || id.startsWith('.')) return undefined;
    const name = `${id}${ggufSuffix}`;
    const names = await this.watchedNames();
    if (names && !names.has(name)) return undefined;
    return this.describe(name);
  }

  /** The directory's names, read once and kept while fs.watch reports no change; undefined when it cannot be watched. */
  private watchedNames(): Promise<ReadonlySet<string> | undefined> {
    if (this.names) return this.names;
    if (!this.watcher) {
      try {
        this.watcher = watch(this.directory, { persistent: false }, () => {
          this.names = undefined;
        });
        this.watcher.on('error', () => this.close());
      } catch {
        return Promise.resolve(undefined); // no directory yet: look the file up each time
      }
    }
    const names = readdir(this.directory).then(
      (entries) => new Set(entries),
      () => {
        this.close();
        return undefined;
      },
    );
    this.names = names as Promise<ReadonlySet<string>>;
    return names;
  }

  private async describe(name: string): Promise<LocalModelFile | undefined> {
    const filePath = path.join(this.directory, name);
    const id = name.slice(0, -ggufSuffix.length);
    let version: string;
    try {
      const info = await stat(filePath);
      if (!info.isFile()) return undefined;
      version = `${info.size}:${info.mtimeMs}`;
    } catch {
      return undefined; // removed between readdir and stat
    }
    let cached = this.headers.get(filePath);
    if (cached?.version !== version) {
      cached = await readGgufHeader(filePath).then(
        (header) => ({ version, header }),
        (error: unknown) => ({ version, problem: `not a valid GGUF file: ${(error as Error).message}` }),
      );
      this.headers.set(filePath, cached);
    }
    const card = await readModelCard(path.join(this.directory, `${id}.json`));
    const problem = cached.problem ?? ('problem' in card ? card.problem : undefined);
    return {
      id,
      path: filePath,
      version,
      header: cached.header,
      card: 'card' in card ? card.card : undefined,
      ...(problem === undefined ? {} : { problem }),
    };
  }
}
