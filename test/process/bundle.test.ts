/**
 * The bundle (dist/llmop.js, scripts/bundle.ts) is ASCII, so V8 keeps its 5 MB source one byte a
 * character: esbuild leaves non-ASCII characters in regular expression literals, and the bundle
 * script writes them as \u escapes, which match the same.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { escapeRegExpLiterals } from '../../scripts/escape-regexp-literals';

describe('the bundle', () => {
  it('is ASCII (npm run build made it; npm test builds first)', () => {
    const bundle = readFileSync(path.join(__dirname, '../../dist/llmop.js'), 'utf8');
    expect(escapeRegExpLiterals(bundle).remaining).toEqual([]);
    expect(/[\u0080-\uffff]/.test(bundle)).toBe(false);
  });

  it('escapes the non-ASCII characters of regular expression literals, which then match the same', () => {
    // The literals esbuild left in the bundle (graphql-tools' path check, graphql-scalars' coordinates), and harder ones.
    const literals = [
      String.raw`/[‘“!%^<>\`]/`,
      String.raw`/^([0-9]{1,3})°\s*([0-9]{1,3}(\.([0-9]{1,}))?)['′]\s*(([0-9]{1,3}(\.([0-9]{1,}))?)["″]\s*)?([NEOSW]?)$/`,
      String.raw`/\‘x[\“]/i`,
      '/😀+/u',
      '/😀/',
    ];
    const samples = ['‘', '“', 'a', '`', '12°34′56″N', "12°34'", 'x', '‘x“', '‘X“', '😀😀', '😀', '\ud83d'];
    for (const literal of literals) {
      const { text, escaped, remaining } = escapeRegExpLiterals(`const r = ${literal};`);
      expect({ literal, escaped, remaining }).toEqual({ literal, escaped: 1, remaining: [] });
      const [original, rewritten] = [literal, text.slice('const r = '.length, -1)].map((source) => {
        const end = source.lastIndexOf('/');
        return new RegExp(source.slice(1, end), source.slice(end + 1));
      });
      for (const sample of samples)
        expect({ literal, sample, matches: rewritten!.test(sample) }).toEqual({ literal, sample, matches: original!.test(sample) });
    }
  });

  it('leaves everything else as it was, and reports non-ASCII text it did not escape', () => {
    const untouched = 'const a = 4 / 2 / 1; const b = "\\u2018";';
    expect(escapeRegExpLiterals(untouched)).toEqual({ text: untouched, escaped: 0, remaining: [] });
    const tagged = 'const c = String.raw`‘`;';
    const { text, remaining } = escapeRegExpLiterals(tagged);
    expect(text).toBe(tagged);
    expect(remaining).toHaveLength(1);
  });
});
