/**
 * The bench's load generator: wrk (C, one thread on its own core), so that the client is never what
 * limits the figures, even against the fake upstream alone. A generated Lua script counts every
 * response by status, and counts as a failure a 200 whose body carries GraphQL `errors`; wrk's own
 * socket errors are reported beside them. Nothing here counts a failure as throughput.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { killOnExit } from './processes';

export interface LoadTarget {
  readonly url: string;
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

export interface LoadSettings {
  readonly connections: number;
  /** Whole seconds: wrk's duration has a one-second grain. */
  readonly seconds: number;
  /** The CPU core wrk is pinned to. */
  readonly core: number;
}

export interface SocketErrors {
  readonly connect: number;
  readonly read: number;
  readonly write: number;
  readonly timeout: number;
}

export interface LoadResult {
  /** Measured by wrk, not the requested duration. */
  readonly seconds: number;
  readonly responses: number;
  /** Responses by HTTP status. */
  readonly statuses: ReadonlyMap<number, number>;
  /** 200s whose body holds GraphQL `errors`: failures, not successes. */
  readonly errorBodies: number;
  readonly socketErrors: SocketErrors;
  /** Successful responses: 200 with no `errors` in the body. */
  readonly succeeded: number;
  readonly latencyMs: { readonly p50: number; readonly p99: number };
}

export const wrkPath = '/usr/bin/wrk';
const resultMarker = 'BENCH_RESULT ';
/** A request that waits this long counts as a wrk timeout error. */
const requestTimeoutSeconds = 5;

/** A Lua long string: no escaping to get wrong, as long as the text cannot close it. */
function luaLongString(text: string): string {
  if (text.includes(']==]')) throw new Error(`cannot embed ${JSON.stringify(text)} in the wrk script`);
  // A newline right after the opening bracket would be dropped by Lua; the leading one keeps it.
  return `[==[\n${text}]==]`;
}

function wrkScript(target: LoadTarget): string {
  const headers = Object.entries(target.headers).map(
    // The spaces matter: `[[` would open a Lua long string.
    ([name, value]) => `wrk.headers[ ${luaLongString(name)} ] = ${luaLongString(value)}`,
  );
  return `
wrk.method = "${target.method}"
${target.body === undefined ? '' : `wrk.body = ${luaLongString(target.body)}`}
${headers.join('\n')}

local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  statuses = {}
  error_bodies = 0
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and body ~= nil and string.find(body, '"errors"', 1, true) then error_bodies = error_bodies + 1 end
end
function done(summary, latency, requests)
  local counts = {}
  local error_total = 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do counts[status] = (counts[status] or 0) + count end
    error_total = error_total + thread:get("error_bodies")
  end
  local parts = {}
  for status, count in pairs(counts) do table.insert(parts, string.format('"%d":%d', status, count)) end
  io.write(string.format(
    '${resultMarker}{"durationUs":%d,"responses":%d,"statuses":{%s},"errorBodies":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50Us":%d,"p99Us":%d}\\n',
    summary.duration, summary.requests, table.concat(parts, ","), error_total,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
`;
}

interface WrkReport {
  durationUs: number;
  responses: number;
  statuses: Record<string, number>;
  errorBodies: number;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  p50Us: number;
  p99Us: number;
}

/** Runs wrk once against `target`; `scriptDirectory` receives the generated Lua script. */
export async function runLoad(target: LoadTarget, settings: LoadSettings, scriptDirectory: string): Promise<LoadResult> {
  if (!Number.isInteger(settings.seconds) || settings.seconds < 1) {
    throw new Error(`wrk runs whole seconds, at least 1; got ${settings.seconds}`);
  }
  const scriptPath = path.join(scriptDirectory, 'load.lua');
  writeFileSync(scriptPath, wrkScript(target));
  const args = [
    '-c',
    String(settings.core),
    wrkPath,
    '--threads',
    '1',
    '--connections',
    String(settings.connections),
    '--duration',
    `${settings.seconds}s`,
    '--timeout',
    `${requestTimeoutSeconds}s`,
    '--script',
    scriptPath,
    target.url,
  ];
  const { stdout, stderr } = await runBounded('taskset', args, (settings.seconds + requestTimeoutSeconds + 15) * 1000);
  const line = stdout.split('\n').find((candidate) => candidate.startsWith(resultMarker));
  if (!line) throw new Error(`wrk printed no result:\n${stdout}${stderr}`);
  const report = JSON.parse(line.slice(resultMarker.length)) as WrkReport;
  const statuses = new Map(Object.entries(report.statuses).map(([status, count]) => [Number(status), count]));
  return {
    seconds: report.durationUs / 1e6,
    responses: report.responses,
    statuses,
    errorBodies: report.errorBodies,
    socketErrors: { connect: report.connect, read: report.read, write: report.write, timeout: report.timeout },
    succeeded: (statuses.get(200) ?? 0) - report.errorBodies,
    latencyMs: { p50: report.p50Us / 1000, p99: report.p99Us / 1000 },
  };
}

/** Runs a command to completion, killed if it outlives `limitMs`; resolves with what it printed. */
function runBounded(command: string, args: readonly string[], limitMs: number): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.once('error', (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(killer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`${command} ${args.join(' ')} ended with ${code ?? signal}:\n${stdout}${stderr}`));
    });
  });
}

/** Sum of the socket errors, for "no errors" checks. */
export const socketErrorCount = (errors: SocketErrors): number => errors.connect + errors.read + errors.write + errors.timeout;
