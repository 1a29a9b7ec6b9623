import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startGateway } from '../support/start-gateway';

/*
 * DATA_DIR holds the embedded ledger, and readiness checks its free space: a directory that does not
 * exist yet is created at start-up, whichever store the ledger uses.
 */

describe('DATA_DIR', () => {
  it.each([
    ['the embedded ledger', {}],
    ['LEDGER=off', { LEDGER: 'off' }],
  ])('is created when missing, and ready answers 200 with %s', async (_name, env: Record<string, string>) => {
    const dataDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'llmop-data-parent-')), 'not', 'yet', 'there');
    const gateway = await startGateway({ env: { ...env, DATA_DIR: dataDir } });
    try {
      expect(existsSync(dataDir)).toBe(true);
      const response = await fetch(`${gateway.url}/api/v1/ready`);
      expect(response.status).toBe(200);
      expect(((await response.json()) as { checks: Record<string, boolean> }).checks.disk_available).toBe(true);
    } finally {
      await gateway.close();
    }
  });
});
