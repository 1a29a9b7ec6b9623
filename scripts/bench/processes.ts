/**
 * The processes the bench measures: the fake upstream and the gateway, each a real child process
 * pinned to a core with taskset (which execs, so the child's pid is the measured process's pid).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import path from 'node:path';

const liveChildren = new Set<ChildProcess>();
// A bench that dies mid-run must not leave a gateway or an upstream behind.
process.once('exit', () => {
  for (const child of liveChildren) child.kill('SIGKILL');
});
// Without a handler, a signal ends the process without the 'exit' event.
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));

/** Kills `child` if the bench exits first. */
export function killOnExit(child: ChildProcess): void {
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
}

/** The last lines a process wrote, shown when it fails. */
class OutputTail {
  private lines: string[] = [];
  constructor(private readonly keep = 60) {}
  add(chunk: Buffer): void {
    this.lines.push(
      ...chunk
        .toString()
        .split('\n')
        .filter((line) => line.length > 0),
    );
    if (this.lines.length > this.keep) this.lines = this.lines.slice(-this.keep);
  }
  toString(): string {
    return this.lines.join('\n');
  }
}

interface PinnedProcess {
  readonly child: ChildProcess;
  readonly output: OutputTail;
  readonly exited: Promise<number | string>;
}

function spawnPinned(core: number, args: readonly string[], env: NodeJS.ProcessEnv, cwd?: string): PinnedProcess {
  const child = spawn('taskset', ['-c', String(core), process.execPath, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);
  const output = new OutputTail();
  child.stdout?.on('data', (chunk: Buffer) => output.add(chunk));
  child.stderr?.on('data', (chunk: Buffer) => output.add(chunk));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, output, exited };
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
async function stopProcess(running: PinnedProcess, graceMs: number): Promise<void> {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return;
  running.child.kill('SIGTERM');
  const killer = setTimeout(() => running.child.kill('SIGKILL'), graceMs);
  await running.exited;
  clearTimeout(killer);
}

/** Resident set size in MiB, from /proc/<pid>/status (VmRSS, in kB). */
export function residentMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match?.[1]) throw new Error(`no VmRSS for process ${pid}`);
  return Number(match[1]) / 1024;
}

const clockTicksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU time (user + system) a process has used so far, in seconds, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicksPerSecond;
}

/** A port on 127.0.0.1 that nothing listens on (bound, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
}

/** One request on a fresh connection (no agent: nothing stays open between the bench's own calls). */
export function sendRequest(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const outgoing = httpRequest(url, {
      method: init.method ?? 'GET',
      headers: init.headers,
      agent: false,
      timeout: init.timeoutMs ?? 10_000,
    });
    outgoing.once('timeout', () => outgoing.destroy(new Error(`${url}: no answer in time`)));
    outgoing.once('error', reject);
    outgoing.once('response', (incoming) => {
      let body = '';
      incoming.setEncoding('utf8');
      incoming.on('data', (chunk: string) => (body += chunk));
      incoming.once('end', () => resolve({ status: incoming.statusCode ?? 0, body }));
      incoming.once('error', reject);
    });
    outgoing.end(init.body);
  });
}

export interface RunningUpstream {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface FakeUpstreamSettings {
  /** The model id it answers as (default bench-model). */
  readonly modelId?: string;
  /** How long each JSON answer waits after its request arrived (default 0: at once). */
  readonly delayMs?: number;
  /** Streams (`stream: true`): words a stream (default 4), when the first leaves, and the time between two. */
  readonly chunks?: number;
  readonly firstChunkDelayMs?: number;
  readonly chunkIntervalMs?: number;
}

/** Starts scripts/bench/fake-upstream.js (compiled next to this file) and waits for its port. */
export async function startFakeUpstream(core: number, settings: FakeUpstreamSettings = {}): Promise<RunningUpstream> {
  const args = [path.join(__dirname, 'fake-upstream.js')];
  if (settings.modelId !== undefined) args.push('--model', settings.modelId);
  if (settings.delayMs !== undefined) args.push('--delay-ms', String(settings.delayMs));
  if (settings.chunks !== undefined) args.push('--chunks', String(settings.chunks));
  if (settings.firstChunkDelayMs !== undefined) args.push('--first-chunk-delay-ms', String(settings.firstChunkDelayMs));
  if (settings.chunkIntervalMs !== undefined) args.push('--chunk-interval-ms', String(settings.chunkIntervalMs));
  const running = spawnPinned(core, args, { PATH: process.env.PATH ?? '' });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    running.child.stdout?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = /\{"port":(\d+)\}/.exec(seen);
      if (match?.[1]) resolve(Number(match[1]));
    });
    void running.exited.then((code) => reject(new Error(`the fake upstream exited (${code}) before listening:\n${running.output}`)));
    setTimeout(() => reject(new Error(`the fake upstream did not listen within 10 s:\n${running.output}`)), 10_000).unref();
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: running.child.pid ?? -1,
    stop: () => stopProcess(running, 2000),
  };
}

export interface GatewaySettings {
  /** The built entry point, e.g. dist/src/start.js. */
  readonly entry: string;
  readonly core: number;
  /** The whole environment of the child (PORT is added here). */
  readonly env: Readonly<Record<string, string>>;
  readonly workingDirectory: string;
  /** Node options before the entry (e.g. `--require` of a probe), none by default. */
  readonly nodeArguments?: readonly string[];
}

export interface RunningGateway {
  readonly url: string;
  readonly pid: number;
  /** From spawn to the first 200 from GET /api/v1/ready. */
  readonly startToReadyMs: number;
  residentMiB(): number;
  cpuSeconds(): number;
  /** What it printed last, for error reports. */
  output(): string;
  stop(): Promise<void>;
}

const readyTimeoutMs = 30_000;
const readyPollMs = 10;

/**
 * Spawns the gateway on a port chosen here (a child started with PORT=0 would have to announce its
 * port in a log format that differs between builds) and polls /api/v1/ready until it answers 200.
 */
export async function startGateway(settings: GatewaySettings): Promise<RunningGateway> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const startedAt = performance.now();
  const running = spawnPinned(
    settings.core,
    [...(settings.nodeArguments ?? []), settings.entry],
    { ...settings.env, PORT: String(port) },
    settings.workingDirectory,
  );
  const pid = running.child.pid ?? -1;
  let exitCode: number | string | undefined;
  void running.exited.then((code) => (exitCode = code));
  const describe = (): string => `gateway ${settings.entry} on ${url}; its last output:\n${running.output}`;

  for (;;) {
    if (exitCode !== undefined) throw new Error(`the gateway exited (${exitCode}) before it was ready: ${describe()}`);
    if (performance.now() - startedAt > readyTimeoutMs) {
      await stopProcess(running, 2000);
      throw new Error(`the gateway was not ready within ${readyTimeoutMs / 1000} s: ${describe()}`);
    }
    const answer = await sendRequest(`${url}/api/v1/ready`, { timeoutMs: 2000 }).catch(() => undefined);
    if (answer?.status === 200) break;
    await new Promise((resolve) => setTimeout(resolve, readyPollMs));
  }
  const startToReadyMs = performance.now() - startedAt;
  return {
    url,
    pid,
    startToReadyMs,
    residentMiB: () => residentMiB(pid),
    cpuSeconds: () => cpuSeconds(pid),
    output: () => running.output.toString(),
    stop: () => stopProcess(running, 5000),
  };
}
