/**
 * A seeded, deterministic fuzzer over real HTTP. Every route (the REST operations and documents with
 * right and wrong methods, unknown paths, GET and POST /graphql) gets malformed, mistyped, oversized,
 * deeply nested and random input, random headers and query strings, and random GraphQL documents.
 * Whatever arrives, the gateway must answer below 500, in JSON (YAML for /openapi.yaml), with its
 * documented error shapes, without leaking a stack or a secret; and it must still serve afterwards.
 *
 * The campaign is fixed by SEED: a failure names the generator, the request and the problem, and
 * rerunning reproduces it.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import path from 'node:path';
import { expectedReply, startFakeUpstream, type FakeUpstream } from '../support/fake-openai-upstream';
import { expectToMatchComponentSchema, expectToMatchContract, rest, type RestResponse } from '../support/contract';
import { startGateway, type RunningGateway } from '../support/start-gateway';

const SEED = 0x5eed_f022;
const CONCURRENCY = 8;
const OPENAI_KEY = 'sk-fuzz-openai-secret-7f3a9c61';
const GATEWAY_KEY = 'llmop-fuzz-gateway-key-2b8e44';
const FINE_TUNE_ID = 'ft:gpt-4o-mini:acme::abc123';
const CATALOG_IDS = (
  JSON.parse(readFileSync(path.resolve(__dirname, '..', '..', 'catalog', 'default-models.json'), 'utf8')) as {
    models: Array<{ id: string }>;
  }
).models.map((model) => model.id);
/** Every catalog model and the fine-tune are listed by the fake, so none is legitimately unavailable (503). */
const AVAILABLE_MODELS = [...CATALOG_IDS, FINE_TUNE_ID];

/** A JavaScript stack frame: "at fn (file.ts:1:2)" or "at file.js:1:2". */
const stackFrame = /\bat\s+(\S+\s+\()?[^\s()]+:\d+:\d+\)?/;
const stackLine = /\n\s+at /;
const jsonType = /^application\/(.+\+)?json\b/i;

// ---------------------------------------------------------------------------------------------------
// Deterministic randomness

/** mulberry32: a tiny 32-bit PRNG; the same seed gives the same campaign. */
class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  bytes(length: number): Buffer {
    const buffer = Buffer.alloc(length);
    for (let index = 0; index < length; index += 1) buffer[index] = Math.floor(this.next() * 256);
    return buffer;
  }
}

// ---------------------------------------------------------------------------------------------------
// Values

const printable = Array.from({ length: 95 }, (_, index) => String.fromCharCode(0x20 + index)).join('');
const controls = ['\u0000', '\u0001', '\u0008', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f', '\u0085', '\u2028', '\u2029'];
const unicodeChars = [...'éßçñøå漢字カタカナ한국어עבריתالعربيةΩЖ', '\u0301', '\u200b', '\u200d', '\u202e', '\ufeff', '\uffff', '\ufffd'];
const emoji = ['😀', '👩‍👩‍👧‍👦', '🏳️‍🌈', '🧪', '🔥', '🇺🇳'];
const loneSurrogates = ['\ud800', '\udfff', '\udbff'];
const specialStrings = [
  '',
  ' ',
  '\t\n',
  'null',
  'undefined',
  'NaN',
  'Infinity',
  '-0',
  '1e309',
  'true',
  '__proto__',
  'constructor',
  'prototype',
  "' OR 1=1 --",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template-injection probe, sent as plain text on purpose
  '${process.env.OPENAI_API_KEY}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '%s%s%s%n',
  '\\u0000',
  '{"query":"{ health { status } }"}',
  'gpt-4o-mini\u0000',
  'GPT-4O-MINI',
  ' gpt-4o-mini ',
  'gpt-4o-mini/../gpt-4',
  'no-such-model',
];
const words = [
  'hello',
  'gateway',
  'weather',
  'naïve',
  'café',
  '漢字',
  'שלום',
  'مرحبا',
  '😀',
  '👩‍👩‍👧‍👦',
  'nul\u0000byte',
  'tab\tbed',
  'zero\u200bwidth',
  'x',
];

/** A random string of one of many hostile kinds. */
function randomString(r: Random): string {
  switch (r.int(0, 11)) {
    case 0:
      return r.pick(specialStrings);
    case 1:
    case 2:
      return Array.from({ length: r.int(1, 40) }, () => printable[r.int(0, printable.length - 1)]).join('');
    case 3: {
      const pools = [printable.split(''), controls, unicodeChars, emoji, loneSurrogates];
      return Array.from({ length: r.int(1, 60) }, () => r.pick(r.pick(pools))).join('');
    }
    case 4:
      return '\u0000'.repeat(r.int(1, 20));
    case 5:
      return Array.from({ length: r.int(1, 12) }, () => r.pick(emoji)).join('');
    case 6:
      return r.pick(['a'.repeat(10_000), 'a'.repeat(10_001), 'é'.repeat(20_000), '😀'.repeat(6_000), 'long '.repeat(4_000)]);
    case 7:
      return r.pick(AVAILABLE_MODELS);
    case 8:
      return r.pick(loneSurrogates) + r.pick(words);
    default:
      return promptText(r);
  }
}

/** A plausible prompt: a few words, some of them unicode, emoji or with a NUL byte. */
function promptText(r: Random): string {
  return Array.from({ length: r.int(1, 8) }, () => r.pick(words)).join(r.pick([' ', '  ', '\n', ' \t ']));
}

const rawNumbers = [
  '0',
  '-0',
  '1',
  '-1',
  '0.5',
  '-0.0',
  '1.0',
  '1E2',
  '1e309',
  '-1e309',
  '1e-400',
  '3.14159',
  '2',
  '2.0001',
  '100',
  '2048',
  '2049',
  '10000',
  '2147483647',
  '2147483648',
  '-2147483649',
  '9007199254740993',
  '123456789012345678901234567890',
];

/** A random JSON value as raw text, so that 1e309, -0 and duplicate keys reach the server verbatim. */
function rawValue(r: Random, depth = 0): string {
  switch (r.int(0, depth >= 2 ? 5 : 7)) {
    case 0:
      return 'null';
    case 1:
      return r.pick(['true', 'false']);
    case 2:
    case 3:
      return r.pick(rawNumbers);
    case 4:
    case 5:
      return JSON.stringify(randomString(r));
    case 6:
      return `[${Array.from({ length: r.int(0, 4) }, () => rawValue(r, depth + 1)).join(',')}]`;
    default:
      return rawObject(Array.from({ length: r.int(0, 4) }, () => [randomKey(r), rawValue(r, depth + 1)] as [string, string]));
  }
}

function randomKey(r: Random): string {
  return r.chance(0.5)
    ? r.pick(['__proto__', 'constructor', 'query', 'variables', 'prompt', 'prompts', 'model_id', '', '\u0000', '😀', 'a.b', '$ref'])
    : randomString(r).slice(0, 30);
}

type Pair = [string, string];
const rawObject = (pairs: readonly Pair[]): string => `{${pairs.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`;

const deepArray = (depth: number, inner = '1'): string => `${'['.repeat(depth)}${inner}${']'.repeat(depth)}`;
const deepObject = (depth: number): string => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;

/** One to three hostile edits of an object's fields: a wrong type, a missing field, an extra or duplicate key. */
function mutateFields(r: Random, fields: Pair[], names: readonly string[]): { pairs: Pair[]; note: string } {
  let pairs = [...fields];
  const notes: string[] = [];
  for (let edit = r.int(1, 3); edit > 0; edit -= 1) {
    const name = r.pick(names);
    switch (r.int(0, 5)) {
      case 0:
      case 1:
      case 2: {
        const value = rawValue(r);
        pairs = [...pairs.filter(([key]) => key !== name), [name, value]];
        notes.push(`${name}=${value.slice(0, 40)}`);
        break;
      }
      case 3:
        pairs = pairs.filter(([key]) => key !== name);
        notes.push(`-${name}`);
        break;
      case 4: {
        const value = rawValue(r);
        pairs.push([name, value]);
        notes.push(`dup ${name}=${value.slice(0, 40)}`);
        break;
      }
      default: {
        const key = randomKey(r);
        pairs.push([key, r.chance(0.2) ? deepArray(r.int(1_000, 20_000)) : rawValue(r)]);
        notes.push(`extra ${JSON.stringify(key).slice(0, 20)}`);
      }
    }
  }
  return { pairs, note: notes.join(' ') };
}

/** Whole bodies that are not what any route expects. */
function structuralBody(r: Random, validBody: string): { body: Buffer; note: string } {
  const text = (body: string, note: string) => ({ body: Buffer.from(body, 'utf8'), note });
  switch (r.int(0, 13)) {
    case 0:
      return text('', 'empty');
    case 1:
      return text(
        r.pick([
          '{',
          '}',
          '{"prompt":',
          '{"prompt":"a",}',
          "{'prompt':'a'}",
          'undefined',
          'NaN',
          '{"prompt": NaN}',
          '{"a":1}{"b":2}',
          '\u0000',
          '{"prompt":"\\uZZZZ"}',
          '{"prompt":"unterminated}',
          '[1,2,',
          '--1',
          '0x10',
          '{"a":01}',
          '\ufeff{}',
          'nul\u0000l',
          '{"prompt":"a" "model_id":"b"}',
          '{,}',
          '[,]',
          '{"a"}',
          '"\\',
          '/* comment */ {}',
        ]),
        'malformed',
      );
    case 2:
      return text(validBody.slice(0, r.int(0, Math.max(0, validBody.length - 1))), 'truncated');
    case 3:
      return { body: r.bytes(r.int(1, 2048)), note: 'random bytes' };
    case 4:
      return text(
        r.pick(['[]', '"a string"', '1', '-0', '1e309', 'null', 'true', '[{"query":"{ health { status } }"}]', '{}']),
        'not an object',
      );
    case 5:
      return text(`[${Array.from({ length: 120_000 }, (_, index) => index % 10).join(',')}]`, 'huge array');
    case 6:
      return text(rawObject(Array.from({ length: 30_000 }, (_, index) => [`k${index}`, String(index)] as Pair)), 'huge object');
    case 7:
      return text(
        rawObject([
          ['prompt', JSON.stringify('a'.repeat(900_000))],
          ['model_id', '"gpt-4o-mini"'],
          ['query', JSON.stringify('{ health { status } }')],
        ]),
        'huge string',
      );
    case 8:
      return text(JSON.stringify({ prompt: 'x'.repeat(1_100_000), query: '{ health { status } }' }), 'over 1 MiB');
    case 9:
      return text(deepArray(r.int(1_000, 100_000)), 'deeply nested array');
    case 10:
      return text(deepObject(r.int(1_000, 50_000)), 'deeply nested object');
    case 11:
      return {
        body: Buffer.concat([
          Buffer.from(validBody.slice(0, 10)),
          Buffer.from([0xff, 0xfe, 0xc0, 0x80, 0xed, 0xa0, 0x80]),
          Buffer.from(validBody.slice(10)),
        ]),
        note: 'invalid UTF-8 inside',
      };
    case 12:
      return { body: Buffer.from(validBody, 'utf16le'), note: 'UTF-16 body' };
    default:
      return text(`${validBody}${r.pick([' ', '\n', 'x', ',', '}', '\u0000'])}`, 'trailing garbage');
  }
}

// ---------------------------------------------------------------------------------------------------
// Requests

interface FuzzRequest {
  /** The route family, for coverage counts: `POST /api/v1/generate`, `unknown path`, `GET /graphql`… */
  readonly target: string;
  /** The generator and its edits, for the report. */
  readonly note: string;
  readonly method: string;
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string | string[]]>;
  readonly body?: Buffer;
}

interface RestRoute {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  /** The path in the contract, e.g. `/models/{model_id}`. */
  readonly contractPath: string;
}

const restRoutes: readonly RestRoute[] = [
  { method: 'GET', path: '/health', contractPath: '/health' },
  { method: 'GET', path: '/status', contractPath: '/status' },
  { method: 'GET', path: '/ready', contractPath: '/ready' },
  { method: 'GET', path: '/models', contractPath: '/models' },
  { method: 'GET', path: '/models/{model_id}', contractPath: '/models/{model_id}' },
  { method: 'GET', path: '/openapi.json', contractPath: '/openapi.json' },
  { method: 'GET', path: '/openapi.yaml', contractPath: '/openapi.yaml' },
  { method: 'POST', path: '/generate', contractPath: '/generate' },
  { method: 'POST', path: '/generate/batch', contractPath: '/generate/batch' },
];
const allMethods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];

/** Percent-encodes a string for a URL, keeping lone surrogates as the (invalid UTF-8) bytes they would be. */
function encodeLoose(value: string): string {
  let out = '';
  for (const char of value) {
    try {
      out += encodeURIComponent(char);
    } catch {
      out += [...Buffer.from([0xed, 0xa0 | ((char.charCodeAt(0) >> 6) & 0x0f), 0x80 | (char.charCodeAt(0) & 0x3f)])]
        .map((byte) => `%${byte.toString(16).toUpperCase()}`)
        .join('');
    }
  }
  return out;
}

function randomQueryString(r: Random): string {
  if (r.chance(0.4)) return '';
  const pairs = Array.from({ length: r.int(0, 5) }, () => {
    const key = r.chance(0.4)
      ? r.pick(['model_id', 'prompt', 'query', 'variables', '__proto__', 'a[b]', 'max_tokens', 'format'])
      : encodeLoose(randomString(r).slice(0, 20));
    return `${encodeLoose(key)}=${r.chance(0.15) ? r.pick(['%ZZ', '%', '%E0%A4%A', '%00', '%C0%80']) : encodeLoose(randomString(r).slice(0, 60))}`;
  });
  if (r.chance(0.2)) pairs.push(pairs[0] ?? 'a=1');
  return `?${pairs.join(r.pick(['&', '&&', ';']))}`;
}

const modelIdSegments = [
  'gpt-4o-mini',
  encodeURIComponent(FINE_TUNE_ID),
  FINE_TUNE_ID,
  'no-such-model',
  '%ZZ',
  '%E0%A4%A',
  '%00',
  '%2F',
  '..',
  '.',
  '%2e%2e',
  'gpt-4o-mini%20',
  encodeLoose('😀'),
  'a'.repeat(3_000),
  encodeLoose('\ud800'),
  '%C0%AE',
  'GPT-4O-MINI',
  '__proto__',
  'constructor',
];

function randomHeaders(r: Random, options: { contentType?: boolean; graphqlGet?: boolean } = {}): Array<[string, string | string[]]> {
  const headers: Array<[string, string | string[]]> = [];
  const roll = r.next();
  if (roll < 0.8) headers.push(['authorization', r.pick([`Bearer ${GATEWAY_KEY}`, `bearer ${GATEWAY_KEY}`, `Bearer   ${GATEWAY_KEY}  `])]);
  else if (roll < 0.92) {
    headers.push([
      'authorization',
      r.pick<string | string[]>([
        'Bearer wrong-key',
        'Basic dXNlcjpwYXNz',
        'Bearer',
        '',
        'Bearer a b',
        `Bearer ${GATEWAY_KEY}x`,
        `Bearer ${'k'.repeat(2_000)}`,
        ['Bearer wrong-key', `Bearer ${GATEWAY_KEY}`],
        [`Bearer ${GATEWAY_KEY}`, 'Bearer wrong-key'],
      ]),
    ]);
  }
  if (options.contentType || r.chance(0.1)) {
    const contentType = r.pick<string | string[]>([
      'application/json',
      'application/json',
      'application/json',
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/json;charset=latin1',
      'application/graphql-response+json',
      'application/vnd.api+json',
      'application/jsonx',
      'application/json; boundary=--',
      'text/plain',
      'text/plain; charset=utf-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=xyz',
      'application/graphql',
      '',
      '*/*',
      ';;;',
      'application/json, text/plain',
      ['application/json', 'text/plain'],
      ['text/plain', 'application/json'],
    ]);
    headers.push(['content-type', contentType]);
  }
  if (r.chance(0.35)) {
    headers.push([
      'accept',
      r.pick<string | string[]>([
        'application/json',
        'application/graphql-response+json',
        'application/graphql-response+json, application/json;q=0.9',
        '*/*',
        'text/html',
        'text/html, application/json',
        'text/event-stream',
        'multipart/mixed; deferSpec=20220824',
        'application/xml',
        'garbage/../..',
        '',
        ['text/html', 'application/json'],
        'application/yaml',
      ]),
    ]);
  }
  if (options.graphqlGet && r.chance(0.75)) {
    headers.push(
      r.chance(0.7)
        ? ['apollo-require-preflight', r.pick(['true', '1', 'yes', 'x'])]
        : ['x-apollo-operation-name', r.pick(['Q', 'Overview', 'x'])],
    );
  }
  for (let extra = r.int(0, 3); extra > 0; extra -= 1) {
    const name = r.pick([
      'x-request-id',
      'x-request-id',
      'x-forwarded-for',
      'x-real-ip',
      'origin',
      'referer',
      'cookie',
      'user-agent',
      'accept-encoding',
      'accept-language',
      'if-none-match',
      'range',
      'x-http-method-override',
      'apollo-require-preflight',
      'x-apollo-operation-name',
      'apollographql-client-name',
      `x-fuzz-${r.int(0, 999)}`,
      `X-${'A'.repeat(r.int(1, 60))}`,
    ]);
    const value = (): string =>
      r.chance(0.5)
        ? r.pick([
            'DELETE',
            'gzip, deflate, br',
            'bytes=0-10',
            '127.0.0.1, 10.0.0.1',
            'req-123',
            'a'.repeat(200),
            '..',
            '{}',
            'null',
            '*',
            'true',
          ])
        : Array.from({ length: r.int(0, 80) }, () => printable[r.int(0, printable.length - 1)])
            .join('')
            .trim();
    headers.push([name, r.chance(0.2) ? [value(), value()] : value()]);
  }
  return headers;
}

/** A valid body for a generation route, as raw JSON pairs. */
function generationFields(r: Random, batch: boolean): Pair[] {
  const pairs: Pair[] = batch
    ? [['prompts', JSON.stringify(Array.from({ length: r.int(1, 4) }, () => promptText(r)))]]
    : [['prompt', JSON.stringify(promptText(r))]];
  pairs.push(['model_id', JSON.stringify(r.pick(['gpt-4o-mini', 'gpt-4o-mini', FINE_TUNE_ID, 'gpt-3.5-turbo-instruct', 'gpt-4.1-nano']))]);
  if (r.chance(0.7)) pairs.push(['max_tokens', String(r.int(1, 24))]);
  if (r.chance(0.5)) pairs.push(['temperature', r.pick(['0', '0.7', '1', '2', '-0'])]);
  if (r.chance(0.5)) pairs.push(['top_p', r.pick(['0', '0.5', '1'])]);
  if (r.chance(0.3)) pairs.push(['seed', String(r.int(-5, 100_000))]);
  return pairs;
}

function restRequest(r: Random, route: RestRoute): FuzzRequest {
  const target = `${route.method} /api/v1${route.path}`;
  const method = r.chance(0.75) ? route.method : r.pick(allMethods.filter((candidate) => candidate !== route.method));
  const pathname = `/api/v1${route.path.replace('{model_id}', () => r.pick(modelIdSegments))}`;
  let note = method === route.method ? 'right method' : 'wrong method';
  let body: Buffer | undefined;
  if (method === 'POST' || (method !== 'GET' && method !== 'HEAD' && r.chance(0.5))) {
    if (route.method === 'POST') {
      const batch = route.path === '/generate/batch';
      const names = batch
        ? ['prompts', 'model_id', 'max_tokens', 'temperature', 'top_p', 'seed']
        : ['prompt', 'model_id', 'max_tokens', 'temperature', 'top_p', 'seed'];
      const fields = generationFields(r, batch);
      const kind = r.next();
      if (kind < 0.25) {
        body = Buffer.from(rawObject(fields));
        note += ', valid body';
      } else if (kind < 0.65) {
        const mutated = mutateFields(r, fields, names);
        body = Buffer.from(rawObject(mutated.pairs));
        note += `, fields: ${mutated.note}`;
      } else {
        const structural = structuralBody(r, rawObject(fields));
        body = structural.body;
        note += `, body: ${structural.note}`;
      }
    } else {
      const structural = structuralBody(r, '{"query":"{ health { status } }"}');
      body = structural.body;
      note += `, body: ${structural.note}`;
    }
  }
  return {
    target,
    note,
    method,
    path: `${pathname}${randomQueryString(r)}`,
    headers: randomHeaders(r, { contentType: body !== undefined && r.chance(0.8) }),
    body,
  };
}

const unknownPaths = [
  '/api/v1',
  '/api/v1/',
  '/api/v1/nope',
  '/api/v1/generate/',
  '/api/v1/generate/batch/x',
  '/api/v1/models/a/b',
  '/api/v1/models/',
  '/api/v1//health',
  '/api/v1/HEALTH',
  '/api/v2/health',
  '/api/v1.0/health',
  '/nope',
  '/graphql/',
  '/GRAPHQL',
  '/graphql.json',
  '/graphiql/nope.js',
  '/graphiql/../package.json',
  '/graphiql/%2e%2e/package.json',
  '/api/v1/%2e%2e/%2e%2e/package.json',
  '/.env',
  '/api/v1/openapi.yml',
  '/favicon.ico',
  '/api/v1/health%00',
  '/%ZZ',
  '/api/v1/ready/',
  '/api/v1/openapi.json/',
  '/api/v1/status.json',
  '/api%2Fv1%2Fhealth',
  '/api/v1/generate%2Fbatch',
  '/',
  '/index.html',
];

function unknownPathRequest(r: Random): FuzzRequest {
  const method = r.pick(allMethods);
  const pathname = r.chance(0.8)
    ? r.pick(unknownPaths)
    : `/${Array.from({ length: r.int(1, 4) }, () => encodeLoose(randomString(r).slice(0, 30))).join('/')}`;
  const withBody = method !== 'GET' && method !== 'HEAD' && r.chance(0.6);
  const structural = withBody ? structuralBody(r, '{"prompt":"hello","model_id":"gpt-4o-mini"}') : undefined;
  return {
    target: 'unknown path',
    note: structural ? `body: ${structural.note}` : 'no body',
    method,
    path: `${pathname}${randomQueryString(r)}`,
    headers: randomHeaders(r, { contentType: withBody }),
    body: structural?.body,
  };
}

// GraphQL documents

const GENERATE_DOC =
  'mutation Gen($prompt: String!, $model_id: String!, $max_tokens: Int, $temperature: Float, $top_p: Float, $seed: Int) { generate(prompt: $prompt, model_id: $model_id, max_tokens: $max_tokens, temperature: $temperature, top_p: $top_p, seed: $seed) { text prompt model_id parameters { max_tokens } } }';
const BATCH_DOC =
  'mutation Batch($prompts: [String!]!, $model_id: String!, $max_tokens: Int) { generate_batch(prompts: $prompts, model_id: $model_id, max_tokens: $max_tokens) { parameters { max_tokens } results { index prompt success text error } } }';
const MODEL_DOC = 'query Model($id: String!) { model(model_id: $id) { model { id name status } } }';

const plainDocs = [
  '{ health { status version timestamp } }',
  '{ status { status uptime_seconds providers { name state detail } warnings } }',
  '{ ready { ready checks { memory_available disk_available providers_initialized } } }',
  '{ models { count models { id name status pricing { input_per_million } fine_tuning { evaluation { metric value } } } } }',
  '{ _service { sdl } }',
  '{ _entities(representations: [{ __typename: "Model", id: "gpt-4o-mini" }]) { ... on Model { id name } } }',
  '{ _entities(representations: [{ __typename: "Nope" }, 1, null, "x"]) { __typename } }',
  'query { __typename }',
  'subscription S { health { status } }',
  '{ __schema { types { name } } }',
  'query A { health { status } } query B { models { count } }',
  'query Q($x: Int = "no") { health { status } }',
  'query Q { ...Missing }',
  'query Q { ...A } fragment A on Query { ...B } fragment B on Query { ...A }',
  'query Q { health @nope { status } }',
  'query Q { health @skip(if: "yes") { status } }',
  '{ health { status status: version } }',
  '{ models(first: 1000000) { count } }',
  'mutation { generate(prompt: "hello world", model_id: "gpt-4o-mini", max_tokens: 3) { text prompt model_id parameters { max_tokens } } }',
  'mutation { generate(prompt: 1e309, model_id: null, max_tokens: 99999999999) { text } }',
  '{ model(model_id: "\\u0000\\uD800😀") { model { id } } }',
  '"""block\nstring""" query Q { health { status } }',
  '# only a comment',
  '',
];

interface GraphQLCall {
  readonly document: string;
  readonly note: string;
  /** Raw JSON text of the variables, when the document takes some. */
  readonly variables?: string;
  readonly operationName?: string;
}

function graphqlCall(r: Random, forGet: boolean): GraphQLCall {
  switch (r.int(0, 11)) {
    case 0:
    case 1:
    case 2: {
      const fields: Pair[] = generationFields(r, false).map(([key, value]) => [key, value]);
      const names = ['prompt', 'model_id', 'max_tokens', 'temperature', 'top_p', 'seed'];
      if (r.chance(0.3)) return { document: GENERATE_DOC, note: 'generate, valid variables', variables: rawObject(fields) };
      const mutated = mutateFields(r, fields, names);
      return { document: GENERATE_DOC, note: `generate, variables: ${mutated.note}`, variables: rawObject(mutated.pairs) };
    }
    case 3: {
      const fields = generationFields(r, true).filter(([key]) => ['prompts', 'model_id', 'max_tokens'].includes(key));
      const mutated = r.chance(0.3) ? { pairs: fields, note: 'valid' } : mutateFields(r, fields, ['prompts', 'model_id', 'max_tokens']);
      return { document: BATCH_DOC, note: `batch, variables: ${mutated.note}`, variables: rawObject(mutated.pairs) };
    }
    case 4: {
      const id = r.chance(0.5) ? JSON.stringify(r.pick([...AVAILABLE_MODELS, 'no-such-model', ''])) : rawValue(r);
      return {
        document: MODEL_DOC,
        note: `model, id=${id.slice(0, 40)}`,
        variables: r.chance(0.9) ? rawObject([['id', id]]) : rawValue(r),
      };
    }
    case 5:
    case 6: {
      const document = r.pick(plainDocs);
      const operationName = document.includes('query A')
        ? r.pick(['A', 'B', 'C', ''])
        : r.chance(0.1)
          ? randomString(r).slice(0, 20)
          : undefined;
      return { document, note: 'fixed document', operationName, variables: r.chance(0.2) ? rawValue(r) : undefined };
    }
    case 7: {
      const source = r.pick([...plainDocs, GENERATE_DOC, MODEL_DOC]);
      const cut = r.int(0, source.length);
      return { document: source.slice(0, cut), note: 'truncated document' };
    }
    case 8: {
      const source = r.pick([...plainDocs, GENERATE_DOC]);
      const at = r.int(0, source.length);
      const insert = r.chance(0.5)
        ? r.pick(['{', '}', '(', ')', '$', '@', '...', '"', '"""', '!', ':', '=', '|', '&', '\\', '\u0000', '😀', '\ud800'])
        : randomString(r).slice(0, 20);
      return { document: `${source.slice(0, at)}${insert}${source.slice(at)}`, note: `inserted ${JSON.stringify(insert).slice(0, 20)}` };
    }
    case 9: {
      const depth = r.int(5, forGet ? 300 : 1_500);
      return r.chance(0.5)
        ? { document: `{ health ${'{ status '.repeat(depth)}${'}'.repeat(depth + 1)}`, note: `selection nested ${depth} deep` }
        : { document: `{ model(model_id: ${deepArray(depth, '"x"')}) { model { id } } }`, note: `argument nested ${depth} deep` };
    }
    case 10: {
      const count = r.int(1, 60);
      const kind = r.int(0, 3);
      if (kind === 0)
        return {
          document: `{ ${Array.from({ length: count }, (_, index) => `a${index}: health { status }`).join(' ')} }`,
          note: `${count} aliases`,
        };
      if (kind === 1)
        return { document: `{ health { status ${'__typename @include(if: true) '.repeat(count)}} }`, note: `${count} directives` };
      if (kind === 2)
        return {
          document: `{ ${Array.from({ length: count }, () => r.pick(['nope', 'health { nope }', 'models { nope }', '__nope', 'helth'])).join(' ')} }`,
          note: 'unknown fields',
        };
      return {
        document: `{ model(model_id: ${JSON.stringify('x'.repeat(forGet ? 1_000 : 200_000))}) { model { id } } }`,
        note: 'long string literal',
      };
    }
    default:
      return { document: randomString(r), note: 'random text as document' };
  }
}

function graphqlGetRequest(r: Random): FuzzRequest {
  let call = graphqlCall(r, true);
  const params: string[] = [];
  const build = (): string => {
    params.length = 0;
    if (r.chance(0.92)) params.push(`query=${encodeLoose(call.document)}`);
    if (call.variables !== undefined) params.push(`variables=${encodeLoose(call.variables)}`);
    else if (r.chance(0.1)) params.push(`variables=${encodeLoose(rawValue(r))}`);
    if (call.operationName !== undefined) params.push(`operationName=${encodeLoose(call.operationName)}`);
    if (r.chance(0.1))
      params.push(`extensions=${encodeLoose(r.pick(['{"persistedQuery":{"version":1,"sha256Hash":"abc"}}', rawValue(r), 'not json']))}`);
    if (r.chance(0.1)) params.push(r.pick(['query=%7Bhealth%7Bstatus%7D%7D', '%ZZ=1', 'query', 'query=%', 'variables=%E0%A4%A']));
    return `/graphql?${params.join('&')}`;
  };
  let requestPath = build();
  // Stay well inside Node's 16 KiB header limit: a request line that long is refused before the gateway sees it.
  if (requestPath.length > 8_000) {
    call = { document: '{ health { status } }', note: `${call.note} (replaced: too long for a URL)` };
    requestPath = build();
  }
  const method = r.chance(0.9) ? 'GET' : 'HEAD';
  return { target: 'GET /graphql', note: call.note, method, path: requestPath, headers: randomHeaders(r, { graphqlGet: true }) };
}

function graphqlPostRequest(r: Random): FuzzRequest {
  const method = r.chance(0.92) ? 'POST' : r.pick(['PUT', 'DELETE', 'PATCH', 'OPTIONS']);
  const call = graphqlCall(r, false);
  const pairs: Pair[] = [['query', r.chance(0.92) ? JSON.stringify(call.document) : rawValue(r)]];
  if (call.variables !== undefined) pairs.push(['variables', call.variables]);
  else if (r.chance(0.1)) pairs.push(['variables', rawValue(r)]);
  if (call.operationName !== undefined) pairs.push(['operationName', JSON.stringify(call.operationName)]);
  else if (r.chance(0.05)) pairs.push(['operationName', rawValue(r)]);
  if (r.chance(0.08)) {
    pairs.push(['extensions', r.pick(['{"persistedQuery":{"version":1,"sha256Hash":"abc"}}', rawValue(r), deepObject(20_000)])]);
  }
  if (r.chance(0.04)) pairs.push(['variables', deepArray(30_000)]);
  let note = call.note;
  let body: Buffer = Buffer.from(rawObject(pairs));
  if (r.chance(0.3)) {
    const structural = structuralBody(r, rawObject(pairs));
    body = structural.body;
    note = `body: ${structural.note}`;
  } else if (r.chance(0.05)) {
    body = Buffer.from(`[${rawObject(pairs)},${rawObject(pairs)}]`);
    note = `batched: ${note}`;
  }
  const headers = randomHeaders(r);
  if (r.chance(0.85) && !headers.some(([name]) => name === 'content-type')) headers.push(['content-type', 'application/json']);
  return { target: 'POST /graphql', note, method, path: r.chance(0.1) ? `/graphql${randomQueryString(r)}` : '/graphql', headers, body };
}

/** The campaign: every route gets its share, in a shuffled order fixed by the seed. */
function campaign(seed: number): FuzzRequest[] {
  const r = new Random(seed);
  const requests: FuzzRequest[] = [];
  for (let round = 0; round < 50; round += 1) for (const route of restRoutes) requests.push(restRequest(r, route));
  for (let index = 0; index < 70; index += 1) requests.push(unknownPathRequest(r));
  for (let index = 0; index < 160; index += 1) requests.push(graphqlGetRequest(r));
  for (let index = 0; index < 320; index += 1) requests.push(graphqlPostRequest(r));
  for (let index = requests.length - 1; index > 0; index -= 1) {
    const other = r.int(0, index);
    [requests[index], requests[other]] = [requests[other]!, requests[index]!];
  }
  return requests;
}

// ---------------------------------------------------------------------------------------------------
// Sending and judging

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

function send(port: number, agent: http.Agent, request: FuzzRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (result: () => void): void => {
      if (!settled) {
        settled = true;
        result();
      }
    };
    const outgoing = http.request({ host: '127.0.0.1', port, method: request.method, path: request.path, agent });
    for (const [name, value] of request.headers) outgoing.setHeader(name, value);
    // Node sends a DELETE or OPTIONS body with neither Content-Length nor chunking: say the true length.
    if (request.body !== undefined) outgoing.setHeader('content-length', request.body.length);
    outgoing.setTimeout(15_000, () => outgoing.destroy(new Error('no answer within 15 s')));
    outgoing.on('response', (incoming) => {
      const chunks: Buffer[] = [];
      incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
      incoming.on('end', () =>
        settle(() => resolve({ status: incoming.statusCode ?? 0, headers: incoming.headers, body: Buffer.concat(chunks) })),
      );
      incoming.on('error', (error) => settle(() => reject(error)));
    });
    // An error after a complete answer (the server closing while a large body is still being written) is not a failure.
    outgoing.on('error', (error) => settle(() => reject(error)));
    outgoing.end(request.body);
  });
}

type ProblemKind = 'transport' | 'status' | 'content-type' | 'rest-error' | 'rest-success' | 'graphql' | 'leak' | 'generation';

interface Problem {
  readonly kind: ProblemKind;
  readonly request: FuzzRequest;
  readonly status: number;
  readonly detail: string;
  /** What problems of one cause share, for grouping the report; the detail when absent. */
  readonly cause?: string;
}

const headerValue = (value: string | string[] | undefined): string => (Array.isArray(value) ? value.join(', ') : (value ?? ''));

/** Every string in a parsed JSON value, keys included, so escaped newlines are seen as newlines. */
function stringsIn(value: unknown, into: string[] = []): string[] {
  if (typeof value === 'string') into.push(value);
  else if (Array.isArray(value)) for (const item of value) stringsIn(item, into);
  else if (value && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      into.push(key);
      stringsIn(item, into);
    }
  }
  return into;
}

const firstLine = (error: unknown): string =>
  (error instanceof Error ? error.message : String(error)).split('\n').slice(0, 3).join(' | ').slice(0, 300);

const restRouteFor = (pathname: string, method: string): RestRoute | undefined =>
  restRoutes.find((route) => route.method === method && new RegExp(`^/api/v1${route.path.replace('{model_id}', '[^/]+')}$`).test(pathname));

/** Counts of accepted generations, checked against what reached the upstream. */
interface Tally {
  acceptedGenerations: number;
  statuses: Map<number, number>;
  targets: Map<string, number>;
}

function judge(request: FuzzRequest, answer: Answer, tally: Tally): Problem[] {
  const problems: Problem[] = [];
  const flag = (kind: ProblemKind, detail: string, cause?: string): void => {
    problems.push({ kind, request, status: answer.status, detail, cause });
  };
  const { pathname } = new URL(request.path, 'http://localhost');
  const contentType = headerValue(answer.headers['content-type']);
  const accept = headerValue(request.headers.find(([name]) => name === 'accept')?.[1]);
  const isGetLike = request.method === 'GET' || request.method === 'HEAD';
  // GET or HEAD / is the landing page; GET /graphql from a browser (HTML wanted, JSON not) is GraphiQL.
  const wantsHtml =
    (request.method === 'GET' || request.method === 'HEAD') && accept.includes('text/html') && !accept.includes('application/json');
  const isHtmlPage = (isGetLike && pathname === '/') || (pathname === '/graphql' && wantsHtml);
  const isYaml = request.method === 'GET' && pathname === '/api/v1/openapi.yaml' && answer.status === 200;
  const isGraphQL = pathname === '/graphql' && !isHtmlPage;
  const text = answer.body.toString('utf8');

  if (answer.status >= 500 || answer.status < 100) flag('status', `HTTP ${answer.status}: ${text.slice(0, 300)}`, serverErrorCause(text));
  const expectedType = isHtmlPage ? /^text\/html\b/ : isYaml ? /^application\/yaml\b/ : jsonType;
  if (!expectedType.test(contentType))
    flag('content-type', `content-type "${contentType}", expected ${expectedType.source}; body: ${text.slice(0, 120)}`);

  if (text.includes(OPENAI_KEY) || text.includes(GATEWAY_KEY)) flag('leak', 'the answer contains a secret key');
  if (stackLine.test(text)) flag('leak', `a stack trace: ${text.slice(0, 200)}`);
  if (request.method === 'HEAD' || isHtmlPage || isYaml || !jsonType.test(contentType)) return problems;

  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    flag('content-type', `a JSON content type but not JSON: ${text.slice(0, 120)}`);
    return problems;
  }
  const strings = stringsIn(body);
  if (strings.some((value) => stackLine.test(value)) || (answer.status >= 400 && strings.some((value) => stackFrame.test(value)))) {
    flag('leak', `a stack trace in the body: ${text.slice(0, 200)}`);
  }
  if (strings.some((value) => /stacktrace/i.test(value))) flag('leak', 'a stacktrace field');

  const response: RestResponse = { status: answer.status, headers: new Headers({ 'content-type': contentType }), body };
  if (isGraphQL) {
    const errors: unknown = body?.errors;
    if (answer.status !== 200 || errors !== undefined) {
      if (!Array.isArray(errors) || errors.length === 0) flag('graphql', `HTTP ${answer.status} without errors: ${text.slice(0, 200)}`);
      else if (!errors.every((error) => typeof error?.extensions?.code === 'string' && typeof error?.message === 'string')) {
        flag('graphql', `an error without a string extensions.code: ${text.slice(0, 200)}`);
      }
    } else if (body?.data === undefined) {
      flag('graphql', `HTTP 200 with neither data nor errors: ${text.slice(0, 200)}`);
    }
    checkGenerations(body?.data?.generate, body?.data?.generate_batch, flag, tally);
    return problems;
  }

  const route = restRouteFor(pathname, request.method);
  const isReadyAnswer = route?.path === '/ready' && answer.status === 503;
  try {
    if (answer.status >= 300 && !isReadyAnswer) expectToMatchComponentSchema(response, 'ErrorResponse');
  } catch (error) {
    flag('rest-error', firstLine(error));
  }
  if (route && (answer.status < 300 || isReadyAnswer) && route.path !== '/openapi.json') {
    try {
      expectToMatchContract(response, route.contractPath, route.method.toLowerCase() as 'get' | 'post');
    } catch (error) {
      flag('rest-success', firstLine(error));
    }
    if (answer.status === 200 && route.path === '/generate') checkGenerations(body, undefined, flag, tally);
    if (answer.status === 200 && route.path === '/generate/batch') checkGenerations(undefined, body, flag, tally);
  }
  return problems;
}

/** Accepted generations must carry the fake upstream's reply for their own prompt: nothing lost or mixed up. */
function checkGenerations(single: any, batch: any, flag: (kind: ProblemKind, detail: string) => void, tally: Tally): void {
  if (single && typeof single.text === 'string') {
    tally.acceptedGenerations += 1;
    const expected = expectedReply(single.prompt, single.parameters?.max_tokens).text;
    if (single.text !== expected)
      flag(
        'generation',
        `text ${JSON.stringify(single.text)} for prompt ${JSON.stringify(single.prompt)}, expected ${JSON.stringify(expected)}`,
      );
  }
  if (batch && Array.isArray(batch.results)) {
    for (const item of batch.results as Array<{ success: boolean; prompt: string; text: string | null }>) {
      if (!item.success) {
        flag('generation', `a batch item failed against a healthy upstream: ${JSON.stringify(item).slice(0, 200)}`);
        continue;
      }
      tally.acceptedGenerations += 1;
      const expected = expectedReply(item.prompt, batch.parameters?.max_tokens).text;
      if (item.text !== expected)
        flag(
          'generation',
          `batch text ${JSON.stringify(item.text)} for prompt ${JSON.stringify(item.prompt)}, expected ${JSON.stringify(expected)}`,
        );
    }
  }
}

/** `code: message head` of a 5xx's first error (GraphQL or REST), so one cause is one group in the report. */
function serverErrorCause(text: string): string {
  try {
    const body = JSON.parse(text) as {
      errors?: Array<{ message?: string; extensions?: { code?: string } }>;
      error?: string;
      message?: string;
    };
    const first = body.errors?.[0];
    const [code, message] = first ? [first.extensions?.code, first.message] : [body.error, body.message];
    return `${String(code)}: ${String(message).split(/[:.]/)[0]}`;
  } catch {
    return text.slice(0, 40);
  }
}

/** Problems grouped by what went wrong, each with one reproducing request: short enough to read in a failure. */
function report(problems: readonly Problem[]): string[] {
  const groups = new Map<string, { count: number; example: Problem }>();
  for (const problem of problems) {
    const cause = problem.cause ?? problem.detail.replace(/\d{4}-\d\d-\d\dT[\d:.]+Z/g, '<time>').slice(0, 90);
    const key = `${problem.kind} | ${problem.request.target} | HTTP ${problem.status} | ${cause}`;
    const group = groups.get(key);
    if (group) group.count += 1;
    else groups.set(key, { count: 1, example: problem });
  }
  return [...groups.entries()].slice(0, 20).map(([key, { count, example }]) => {
    const body =
      example.request.body === undefined
        ? ''
        : ` body ${JSON.stringify(example.request.body.subarray(0, 160).toString('utf8'))}${example.request.body.length > 160 ? `… (${example.request.body.length} bytes)` : ''}`;
    return `${count}× ${key}\n    e.g. [${example.request.note}] ${example.request.method} ${example.request.path.slice(0, 160)} headers ${JSON.stringify(example.request.headers).slice(0, 200)}${body}\n    → ${example.detail.slice(0, 300)}`;
  });
}

async function runPool<T>(items: readonly T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next]!;
      next += 1;
      await work(item);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
}

// ---------------------------------------------------------------------------------------------------

describe(`fuzzing every route with seed ${SEED.toString(16)}`, () => {
  let fake: FakeUpstream;
  let gateway: RunningGateway;
  const auth = { authorization: `Bearer ${GATEWAY_KEY}` };
  const requests = campaign(SEED);
  const problems: Problem[] = [];
  const tally: Tally = { acceptedGenerations: 0, statuses: new Map(), targets: new Map() };

  beforeAll(async () => {
    fake = await startFakeUpstream({ models: AVAILABLE_MODELS });
    gateway = await startGateway({
      env: { OPENAI_API_KEY: OPENAI_KEY, OPENAI_BASE_URL: fake.url, API_KEYS: GATEWAY_KEY, UPSTREAM_TIMEOUT_MS: '5000' },
    });
    const port = Number(new URL(gateway.url).port);
    const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    try {
      await runPool(requests, CONCURRENCY, async (request) => {
        tally.targets.set(request.target, (tally.targets.get(request.target) ?? 0) + 1);
        let answer: Answer;
        try {
          answer = await send(port, agent, request);
        } catch (error) {
          problems.push({ kind: 'transport', request, status: 0, detail: `no answer: ${firstLine(error)}` });
          return;
        }
        tally.statuses.set(answer.status, (tally.statuses.get(answer.status) ?? 0) + 1);
        problems.push(...judge(request, answer, tally));
      });
    } finally {
      agent.destroy();
    }
  }, 60_000);

  afterAll(async () => {
    await gateway?.close();
    await fake?.close();
  });

  const problemsOf = (...kinds: ProblemKind[]): string[] => report(problems.filter((problem) => kinds.includes(problem.kind)));

  it('sends at least 600 requests, with every route getting its share', () => {
    expect(requests.length).toBeGreaterThanOrEqual(600);
    const targets = Object.fromEntries(tally.targets);
    for (const route of restRoutes) expect(targets[`${route.method} /api/v1${route.path}`]).toBeGreaterThanOrEqual(40);
    for (const target of ['unknown path', 'GET /graphql', 'POST /graphql']) expect(targets[target]).toBeGreaterThanOrEqual(60);
  });

  it('gets an HTTP answer to every request: no dropped connection, no timeout', () => {
    expect(problemsOf('transport')).toEqual([]);
  });

  it('never answers with a 5xx (other than /ready reporting not ready)', () => {
    expect(problemsOf('status')).toEqual([]);
  });

  it('answers in JSON everywhere, YAML for /openapi.yaml and HTML only for the pages browsers ask for', () => {
    expect(problemsOf('content-type')).toEqual([]);
  });

  it('answers every REST error (non-2xx, except /ready 503) with an ErrorResponse', () => {
    expect(problemsOf('rest-error')).toEqual([]);
  });

  it('answers every accepted REST request with its documented response', () => {
    expect(problemsOf('rest-success')).toEqual([]);
  });

  it('answers every GraphQL error with errors[].extensions.code strings', () => {
    expect(problemsOf('graphql')).toEqual([]);
  });

  it('never leaks a stack trace, the OpenAI key or the gateway key', () => {
    expect(problemsOf('leak')).toEqual([]);
  });

  it('gives every accepted generation the upstream reply to its own prompt, and each reached the upstream', () => {
    expect(problemsOf('generation')).toEqual([]);
    expect(tally.acceptedGenerations).toBeGreaterThanOrEqual(20);
    // A completions call can carry several prompts of one batch: count prompts, not calls.
    const upstreamGenerations = fake.requests
      .filter((request) => request.method === 'POST' && /\/(chat\/)?completions$/.test(request.path))
      .reduce((count, request) => count + (Array.isArray(request.body?.prompt) ? request.body.prompt.length : 1), 0);
    expect(upstreamGenerations).toBeGreaterThanOrEqual(tally.acceptedGenerations);
  });

  it('reaches both refusals and successes: the fuzzer is not stopped at the door', () => {
    const statuses = [...tally.statuses.keys()];
    expect(statuses.filter((status) => status >= 200 && status < 300).length).toBeGreaterThan(0);
    for (const status of [400, 401, 404, 405, 413]) expect(statuses).toContain(status);
    expect(tally.statuses.get(200) ?? 0).toBeGreaterThanOrEqual(100);
  });

  it('still serves afterwards: nothing is left in flight, health answers and a real generate works over REST and GraphQL', async () => {
    const deadline = Date.now() + 2_000;
    while (gateway.app.http.inFlight.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gateway.app.http.inFlight.size).toBe(0);

    const health = await rest(gateway, 'GET', '/health');
    expectToMatchContract(health, '/health', 'get');
    expect(health.body.status).toBe('healthy');

    const prompt = 'Still standing after the storm of requests';
    const generated = await rest(gateway, 'POST', '/generate', { prompt, model_id: 'gpt-4o-mini', max_tokens: 5 }, auth);
    expectToMatchContract(generated, '/generate', 'post');
    expect(generated.status).toBe(200);
    expect(generated.body.text).toBe(expectedReply(prompt, 5).text);

    const graphql = await gateway.graphql(GENERATE_DOC, { prompt, model_id: FINE_TUNE_ID, max_tokens: 3 }, auth);
    expect(graphql.status).toBe(200);
    expect(graphql.body.errors).toBeUndefined();
    expect(graphql.body.data.generate).toEqual({
      text: expectedReply(prompt, 3).text,
      prompt,
      model_id: FINE_TUNE_ID,
      parameters: { max_tokens: 3 },
    });
  });
});
