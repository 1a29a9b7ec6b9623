/**
 * What the bench's fake upstream streams, shared with the bench that checks it: the words of
 * "hello from the bench", over and over, one word a chunk.
 */
const words = ['hello', ' from', ' the', ' bench'] as const;

/** The text of chunk `index` (0-based): later rounds of the words start with a space. */
export function streamedWord(index: number): string {
  const word = words[index % words.length]!;
  return index > 0 && index % words.length === 0 ? ` ${word}` : word;
}

/** The whole reply of a stream of `count` chunks. */
export function streamedReply(count: number): string {
  let text = '';
  for (let index = 0; index < count; index += 1) text += streamedWord(index);
  return text;
}
