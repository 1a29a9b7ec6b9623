/**
 * Used by scripts/bundle.ts: V8 holds a script's source for as long as the script lives, one byte a
 * character only when every character fits in one, and esbuild escapes non-ASCII text everywhere but
 * in regular expression literals (and in the raw text of tagged templates, which must stay as written).
 * So before esbuild reads a module, its regular expression literals are found by TypeScript's parser
 * (a real one: a `/` can start a literal or divide, and only the grammar tells) and their non-ASCII
 * characters written as \u escapes.
 */
import ts from 'typescript';

const nonAscii = /[\u0080-\uffff]/;

/**
 * Writes each non-ASCII character of the regular expression literals in a module's `source` as its \u
 * escape, one UTF-16 unit at a time (as a literal without the u flag reads it; with the flag an escaped
 * pair is one character again). A character after a backslash loses the backslash: `\‘` and `‘` match the
 * same. A module the parser reports errors in is left as it is (`escaped` 0, and the first error).
 */
export function escapeRegExpLiterals(source: string, fileName = 'module.js'): { text: string; escaped: number; parseError?: string } {
  if (!nonAscii.test(source)) return { text: source, escaped: 0 };
  const file = ts.createSourceFile(fileName, source, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  // Internal to TypeScript (createSourceFile has no public way to its syntax errors): checked, so a rename fails the build.
  const diagnostics = (file as unknown as { parseDiagnostics?: unknown }).parseDiagnostics;
  if (!Array.isArray(diagnostics)) throw new Error('TypeScript no longer exposes parseDiagnostics on a source file');
  const [firstError] = diagnostics as ts.Diagnostic[];
  if (firstError) return { text: source, escaped: 0, parseError: ts.flattenDiagnosticMessageText(firstError.messageText, ' ') };
  const literals: Array<readonly [number, number]> = [];
  const visit = (node: ts.Node): void => {
    if (node.kind === ts.SyntaxKind.RegularExpressionLiteral) {
      const start = node.getStart(file);
      if (nonAscii.test(source.slice(start, node.end))) literals.push([start, node.end]);
      return;
    }
    ts.forEachChild(node, visit);
  };
  visit(file);
  let text = '';
  let copied = 0;
  for (const [start, end] of literals) {
    const rewritten = source.slice(start, end).replace(/(\\*)([\u0080-\uffff])/g, (_match, slashes: string, unit: string) => {
      const escaped = `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`;
      return (slashes.length % 2 === 1 ? slashes.slice(1) : slashes) + escaped;
    });
    const flagsAt = rewritten.lastIndexOf('/');
    // The rewritten literal must still compile with its flags (the build fails rather than change what the code means).
    new RegExp(rewritten.slice(1, flagsAt), rewritten.slice(flagsAt + 1));
    text += source.slice(copied, start) + rewritten;
    copied = end;
  }
  text += source.slice(copied);
  return { text, escaped: literals.length };
}

/** Where `text` is not ASCII, for a report (line and column, 1-based, with some context). */
export function nonAsciiPlaces(text: string): string[] {
  const places: string[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    const column = line.search(nonAscii);
    if (column >= 0) places.push(`line ${index + 1}, column ${column + 1}: ${line.slice(Math.max(0, column - 40), column + 40)}`);
  }
  return places;
}
