/**
 * How many characters at the end of `text` must wait before being sent: the longest end that could
 * still become one of the stop strings, or a UTF-8 character cut in half (decoded as U+FFFD).
 */
export function heldBackLength(text: string, stops: readonly string[]): number {
  let held = 0;
  while (held < text.length && text.charCodeAt(text.length - 1 - held) === 0xfffd) held += 1;
  for (const stop of stops) {
    for (let length = Math.min(stop.length - 1, text.length); length > held; length -= 1) {
      if (text.endsWith(stop.slice(0, length))) {
        held = length;
        break;
      }
    }
  }
  return held;
}
