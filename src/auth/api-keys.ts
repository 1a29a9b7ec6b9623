import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { CallerRole } from '../pipeline/caller';

/** Per-key overrides of the rate limits (requests per window). */
export interface KeyLimits {
  readonly generate?: number;
  readonly generateBatch?: number;
  readonly other?: number;
}

/** A key as the gateway holds it: a name for logs and limits, its role and team, and the SHA-256 of the secret. */
export interface HashedApiKey {
  readonly name: string;
  readonly sha256: string;
  readonly role: CallerRole;
  readonly team?: string;
  readonly limits?: KeyLimits;
}

export const sha256Hex = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

const limitsSchema = z
  .object({
    generate: z.number().int().positive().optional(),
    generate_batch: z.number().int().positive().optional(),
    other: z.number().int().positive().optional(),
  })
  .optional();

const keyEntryFields = {
  name: z.string().min(1),
  role: z.enum(['admin', 'member']).default('member'),
  team: z.string().min(1).optional(),
  limits: limitsSchema,
};

const keysFileSchema = z.object({
  keys: z.array(
    z.union([
      z.object({ ...keyEntryFields, key_sha256: z.string().regex(/^[0-9a-f]{64}$/i) }),
      z.object({ ...keyEntryFields, key: z.string().min(16, 'keys must be at least 16 characters') }),
    ]),
  ),
});

export class ApiKeysFileError extends Error {
  override readonly name = 'ApiKeysFileError';
}

/** Reads API_KEYS_FILE: `{ "keys": [{ "name", "key_sha256" | "key", "role"? (default member), "team"?, "limits"? }] }`. */
export function readApiKeysFile(filePath: string): HashedApiKey[] {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(filePath, 'utf8'));
  } catch (error) {
    throw new ApiKeysFileError(`API_KEYS_FILE: cannot read ${filePath}: ${(error as Error).message}`);
  }
  const parsed = keysFileSchema.safeParse(raw);
  if (!parsed.success) {
    // Issues name paths and rules, never the values, so no key is echoed.
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    throw new ApiKeysFileError(`API_KEYS_FILE: ${filePath} is not valid: ${problems.join('; ')}`);
  }
  return parsed.data.keys.map((entry) => ({
    name: entry.name,
    sha256: 'key' in entry ? sha256Hex(entry.key) : entry.key_sha256.toLowerCase(),
    role: entry.role,
    team: entry.team,
    limits: entry.limits && {
      generate: entry.limits.generate,
      generateBatch: entry.limits.generate_batch,
      other: entry.limits.other,
    },
  }));
}

/** Checks presented keys against the configured ones without leaking timing or keeping raw secrets. */
export class ApiKeyRegistry {
  private readonly entries: ReadonlyArray<{ key: HashedApiKey; digest: Buffer }>;

  constructor(keys: readonly HashedApiKey[]) {
    const names = new Set<string>();
    for (const key of keys) {
      if (names.has(key.name)) throw new ApiKeysFileError(`API key name "${key.name}" is used twice`);
      names.add(key.name);
    }
    this.entries = keys.map((key) => ({ key, digest: Buffer.from(key.sha256, 'hex') }));
  }

  get enabled(): boolean {
    return this.entries.length > 0;
  }

  get size(): number {
    return this.entries.length;
  }

  /** The matching key, comparing digests in constant time against every entry. */
  find(presented: string): HashedApiKey | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: HashedApiKey | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(digest, entry.digest) && !found) found = entry.key;
    }
    return found;
  }
}
