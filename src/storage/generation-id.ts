import { randomFillSync } from 'node:crypto';

// Crockford's base32 in lower case: its characters sort in the same order as their values in
// every collation, so ids sort by time in SQLite and PostgreSQL alike.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_CHARACTERS = 10; // 50 bits of milliseconds
const RANDOM_CHARACTERS = 16; // 80 random bits

// Random bytes drawn 4 KiB at a time: one call into the CSPRNG per 256 ids instead of one per id
// (a call costs microseconds, on every generation's path).
const pool = Buffer.alloc(RANDOM_CHARACTERS * 256);
let poolOffset = pool.length;

function randomCharacters(): string {
  if (poolOffset + RANDOM_CHARACTERS > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  let characters = '';
  for (let index = poolOffset; index < poolOffset + RANDOM_CHARACTERS; index++) characters += ALPHABET[pool[index]! % 32];
  poolOffset += RANDOM_CHARACTERS;
  return characters;
}

/** `prefix`, 10 characters of the time, 16 random characters: ids that sort by time. */
function timeOrderedId(prefix: string, createdAt: Date): string {
  let time = createdAt.getTime();
  if (!Number.isSafeInteger(time) || time < 0) throw new RangeError(`cannot make an id for the time ${createdAt.toString()}`);
  let timePart = '';
  for (let index = 0; index < TIME_CHARACTERS; index++) {
    timePart = ALPHABET[time % 32] + timePart;
    time = Math.floor(time / 32);
  }
  return `${prefix}${timePart}${randomCharacters()}`;
}

/** A new generation id: `gen_` and a time-ordered random part. */
export const newGenerationId = (createdAt: Date): string => timeOrderedId('gen_', createdAt);

/** A new feedback id: `fb_` and a time-ordered random part. */
export const newFeedbackId = (createdAt: Date): string => timeOrderedId('fb_', createdAt);

/** A new dataset id: `ds_` and a time-ordered random part. */
export const newDatasetId = (createdAt: Date): string => timeOrderedId('ds_', createdAt);

/** A new evaluation run id: `ev_` and a time-ordered random part. */
export const newEvaluationId = (createdAt: Date): string => timeOrderedId('ev_', createdAt);
