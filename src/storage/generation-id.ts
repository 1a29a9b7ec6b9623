import { randomBytes } from 'node:crypto';

// Crockford's base32 in lower case: its characters sort in the same order as their values in
// every collation, so ids sort by time in SQLite and PostgreSQL alike.
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const TIME_CHARACTERS = 10; // 50 bits of milliseconds
const RANDOM_CHARACTERS = 16; // 80 random bits

/** `prefix`, 10 characters of the time, 16 random characters: ids that sort by time. */
function timeOrderedId(prefix: string, createdAt: Date): string {
  let time = createdAt.getTime();
  if (!Number.isSafeInteger(time) || time < 0) throw new RangeError(`cannot make an id for the time ${createdAt.toString()}`);
  let timePart = '';
  for (let index = 0; index < TIME_CHARACTERS; index++) {
    timePart = ALPHABET[time % 32] + timePart;
    time = Math.floor(time / 32);
  }
  let randomPart = '';
  for (const byte of randomBytes(RANDOM_CHARACTERS)) randomPart += ALPHABET[byte % 32];
  return `${prefix}${timePart}${randomPart}`;
}

/** A new generation id: `gen_` and a time-ordered random part. */
export const newGenerationId = (createdAt: Date): string => timeOrderedId('gen_', createdAt);

/** A new feedback id: `fb_` and a time-ordered random part. */
export const newFeedbackId = (createdAt: Date): string => timeOrderedId('fb_', createdAt);
