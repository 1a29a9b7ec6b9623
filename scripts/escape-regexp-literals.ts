/**
 * Used by scripts/bundle.ts: V8 holds a script's source for as long as the script lives, one byte a
 * character only when every character fits in one, and esbuild escapes non-ASCII text everywhere but
 * in regular expression literals (and the raw text of tagged templates, which must stay as written).
 */

/** A regular expression literal starting where it is tried: `/`, its body (escapes, classes), `/`, its flags. */
const literalAt = /\/(?![*/])(?:\\.|\[(?:\\.|[^\]\\\n])*\]|[^/\\\n[])+\/[dgimsuvy]*/y;
/** Words after which a `/` starts a regular expression rather than a division. */
const wordsBeforeExpression = new Set([
  'return',
  'typeof',
  'case',
  'do',
  'else',
  'in',
  'of',
  'new',
  'delete',
  'void',
  'throw',
  'instanceof',
  'yield',
  'await',
]);

/** Whether a `/` at `index` can start a regular expression literal: after an operator or punctuator, a keyword, or nothing. */
function expressionMayStartAt(text: string, index: number): boolean {
  let before = index - 1;
  while (before >= 0 && (text[before] === ' ' || text[before] === '\t')) before -= 1;
  if (before < 0 || text[before] === '\n') return true;
  const previous = text[before]!;
  if ('(,=:[!&|?{};+-*%<>~^'.includes(previous)) return true;
  const word = /[A-Za-z_$][\w$]*$/.exec(text.slice(Math.max(0, before - 20), before + 1))?.[0];
  return word !== undefined && wordsBeforeExpression.has(word);
}

/** The regular expression literal that holds the character at `index`, as [start, end); undefined when none does. */
function enclosingLiteral(text: string, index: number): [number, number] | undefined {
  const lineStart = text.lastIndexOf('\n', index) + 1;
  for (let slash = text.lastIndexOf('/', index); slash >= lineStart; slash = text.lastIndexOf('/', slash - 1)) {
    literalAt.lastIndex = slash;
    const literal = literalAt.exec(text);
    if (literal && slash + literal[0].length > index && expressionMayStartAt(text, slash)) return [slash, slash + literal[0].length];
  }
  return undefined;
}

/**
 * Writes each non-ASCII character of the regular expression literals in `source` as its \u escape, one
 * UTF-16 unit at a time (as a literal without the u flag reads it; with the flag, an escaped pair is
 * one character again). A character after a backslash loses the backslash: `\‘` and `‘` match the same.
 * Each rewritten literal must compile with its flags. Returns the places still not ASCII.
 */
export function escapeRegExpLiterals(source: string): { text: string; escaped: number; remaining: string[] } {
  const spans = new Map<number, number>();
  const remaining: string[] = [];
  for (const match of source.matchAll(/[\u0080-\uffff]/g)) {
    const index = match.index;
    const span = enclosingLiteral(source, index);
    if (span) spans.set(span[0], span[1]);
    else remaining.push(`offset ${index}: ${source.slice(Math.max(0, index - 40), index + 40)}`);
  }
  let text = '';
  let copied = 0;
  for (const [start, end] of [...spans].sort((left, right) => left[0] - right[0])) {
    const literal = source.slice(start, end);
    const rewritten = literal.replace(/(\\*)([\u0080-\uffff])/g, (_match, slashes: string, unit: string) => {
      const escaped = `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`;
      return (slashes.length % 2 === 1 ? slashes.slice(1) : slashes) + escaped;
    });
    const flagsAt = rewritten.lastIndexOf('/');
    // Throws on a literal that does not compile (the build fails rather than change what the code means).
    new RegExp(rewritten.slice(1, flagsAt), rewritten.slice(flagsAt + 1));
    text += source.slice(copied, start) + rewritten;
    copied = end;
  }
  text += source.slice(copied);
  return { text, escaped: spans.size, remaining };
}
