import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ModelDirectory } from '../../src/providers/local/model-directory';
import { poll } from '../support/polling';

describe('the models directory', () => {
  let directoryPath: string;
  let directory: ModelDirectory;

  beforeEach(() => {
    directoryPath = mkdtempSync(path.join(os.tmpdir(), 'llmop-models-'));
    directory = new ModelDirectory(directoryPath);
  });
  afterEach(() => {
    directory.close();
    rmSync(directoryPath, { recursive: true, force: true });
  });

  it('finds a model file that appears after an id was looked up and missed', async () => {
    expect(await directory.find('late')).toBeUndefined();
    writeFileSync(path.join(directoryPath, '.late.tmp'), 'not a real model');
    renameSync(path.join(directoryPath, '.late.tmp'), path.join(directoryPath, 'late.gguf'));

    const found = await poll(
      () => directory.find('late'),
      (file) => file !== undefined,
    );
    expect(found?.id).toBe('late');
    // Not a GGUF file: found, and marked unusable rather than hidden.
    expect(found?.problem).toContain('not a valid GGUF file');
  });

  it('stops finding a model whose file was removed', async () => {
    writeFileSync(path.join(directoryPath, 'gone.gguf'), 'x');
    expect(await directory.find('gone')).toBeDefined();
    rmSync(path.join(directoryPath, 'gone.gguf'));

    expect(
      await poll(
        () => directory.find('gone'),
        (file) => file === undefined,
      ),
    ).toBeUndefined();
  });

  it('looks files up directly when the directory does not exist yet', async () => {
    const missing = new ModelDirectory(path.join(directoryPath, 'not-yet'));
    try {
      expect(await missing.find('model')).toBeUndefined();
    } finally {
      missing.close();
    }
  });
});
