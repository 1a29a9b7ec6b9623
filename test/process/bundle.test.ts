/**
 * The bundle (dist/llmop.js, scripts/bundle.ts) is ASCII, so V8 keeps its 5 MB source one byte a
 * character: esbuild leaves non-ASCII characters in regular expression literals, and the bundle
 * script writes them as \u escapes as it reads each module, which match the same.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { decode, encode } from '@jridgewell/sourcemap-codec';
import { escapeRegExpLiterals, nonAsciiPlaces } from '../../scripts/escape-regexp-literals';
import { withCheckingNameHelper } from '../../scripts/name-helper';

/** The regular expression a literal (`/body/flags`) makes. */
function compiled(literal: string): RegExp {
  const flagsAt = literal.lastIndexOf('/');
  return new RegExp(literal.slice(1, flagsAt), literal.slice(flagsAt + 1));
}

describe('the bundle', () => {
  it('is ASCII (npm run build made it; npm test builds first)', () => {
    const bundle = readFileSync(path.join(__dirname, '../../dist/llmop.js'), 'utf8');
    expect(nonAsciiPlaces(bundle)).toEqual([]);
  });

  it("leaves Apollo's document hashing to node:crypto: bundled, its hash module found no `module.require` and used sha.js", () => {
    const bundle = readFileSync(path.join(__dirname, '../../dist/llmop.js'), 'utf8');
    expect(bundle).not.toContain('node_modules/@apollo/utils.createhash/');
    expect(bundle).not.toContain('node_modules/sha.js/');
  });

  it('escapes the non-ASCII characters of regular expression literals, which then match the same', () => {
    // The literals esbuild left in the bundle (graphql-tools' path check, graphql-scalars' coordinates), and harder ones.
    const literals = [
      String.raw`/[‘“!%^<>\`]/`,
      String.raw`/^([0-9]{1,3})°\s*([0-9]{1,3}(\.([0-9]{1,}))?)['′]\s*(([0-9]{1,3}(\.([0-9]{1,}))?)["″]\s*)?([NEOSW]?)$/`,
      String.raw`/\‘x[\“]/i`,
      '/[‘’][^/]*“/',
      '/[^/]‘/u',
      '/(‘|[:/]“)/',
      '/😀+/u',
      '/😀/',
    ];
    const samples = ['‘', '“', 'a', '`', '12°34′56″N', "12°34'", 'x', '‘x“', '‘X“', '‘ab“', 'a‘', ':“', '/“', '😀😀', '😀', '\ud83d'];
    for (const literal of literals) {
      const { text, escaped } = escapeRegExpLiterals(`const r = ${literal};`);
      expect({ literal, escaped, ascii: nonAsciiPlaces(text) }).toEqual({ literal, escaped: 1, ascii: [] });
      const rewritten = text.slice('const r = '.length, -1);
      for (const sample of samples) {
        expect({ literal, sample, matches: compiled(rewritten).test(sample) }).toEqual({
          literal,
          sample,
          matches: compiled(literal).test(sample),
        });
      }
    }
  });

  it('leaves everything but regular expression literals as it was: divisions, strings, comments, tagged templates', () => {
    const module = [
      'const a = 4 / 2 / 1, b = "‘quoted’"; // a comment — with a dash',
      'let i = 0; const x = i++ / 2, y = String.raw`‘` / 3;',
      'const z = String.raw`a(/‘/)b`, w = tag`“${a}”`;',
      'const r = a / 2 > 1 ? /‘/g : /“/;',
    ].join('\n');
    const { text, escaped } = escapeRegExpLiterals(module);
    expect(escaped).toBe(2);
    expect(text).toBe(module.replace('/‘/g', String.raw`/\u2018/g`).replace('/“/;', String.raw`/\u201c/;`));
  });

  it('leaves a module the parser cannot read as it was', () => {
    const broken = 'const r = /‘/; function (';
    expect(escapeRegExpLiterals(broken)).toEqual({ text: broken, escaped: 0, parseError: expect.any(String) });
  });

  it('names functions through a helper that leaves a name V8 already gave alone, and redefines any other', () => {
    const bundle = readFileSync(path.join(__dirname, '../../dist/llmop.js'), 'utf8');
    const helper = bundle.match(/var __name=\(target,value\)=>[^;]*;/)?.[0];
    expect(helper).toContain('target.name===value?target:');
    // The helper as the bundle has it, run on its own.
    const __name = new Function('__defProp', `${helper} return __name;`)(Object.defineProperty) as (
      target: object,
      value: string,
    ) => object;
    const inferred = (): number => 1;
    const before = Object.getOwnPropertyDescriptor(inferred, 'name');
    expect(__name(inferred, 'inferred')).toBe(inferred);
    expect(Object.getOwnPropertyDescriptor(inferred, 'name')).toEqual(before);
    const renamed = class Generation2 {};
    __name(renamed, 'Generation');
    expect(renamed.name).toBe('Generation');
    expect(Object.getOwnPropertyDescriptor(renamed, 'name')).toEqual({
      value: 'Generation',
      writable: false,
      enumerable: false,
      configurable: true,
    });
  });

  it("moves the source map's columns after the helper by what it grew, on its line only", () => {
    const esbuildHelper = 'var __name=(target,value)=>__defProp(target,"name",{value,configurable:!0});';
    const code = `"use strict";${esbuildHelper}function a(){}\nfunction b(){}`;
    const helperAt = code.indexOf(esbuildHelper);
    const afterAt = helperAt + esbuildHelper.length;
    // Line 0: a segment before the helper and one after it; line 1: one segment.
    const mappings = encode([
      [
        [0, 0, 0, 0],
        [afterAt, 0, 3, 0],
      ],
      [[0, 0, 4, 0]],
    ]);
    const result = withCheckingNameHelper(code, { version: 3, sources: ['x.ts'], mappings });
    const grew = result.code.length - code.length;
    expect(grew).toBeGreaterThan(0);
    expect(result.code.slice(afterAt + grew)).toBe(code.slice(afterAt));
    expect(decode(result.map.mappings)).toEqual([
      [
        [0, 0, 0, 0],
        [afterAt + grew, 0, 3, 0],
      ],
      [[0, 0, 4, 0]],
    ]);
    expect(() => withCheckingNameHelper('no helper here', { mappings: '' })).toThrow(/exactly once/);
  });
});
