import { statfs } from 'node:fs/promises';
import os from 'node:os';
import type { BreakerState } from '../pipeline/routing/circuit-breaker';
import type { ProviderHealth } from '../providers/provider';
import type { ProviderRegistry } from '../providers/registry';

export type HealthState = 'healthy' | 'degraded' | 'unhealthy';

export interface ResourceUsage {
  readonly memory: { readonly total: number; readonly available: number; readonly used: number; readonly percent: number };
  readonly disk: { readonly total: number; readonly free: number; readonly used: number; readonly percent: number };
  readonly cpu: { readonly percent: number; readonly count: number };
}

export interface SystemStatus {
  readonly status: HealthState;
  readonly timestamp: Date;
  readonly version: string;
  readonly uptimeSeconds: number;
  readonly system: ResourceUsage;
  readonly environment: { readonly nodeVersion: string; readonly platform: string; readonly arch: string };
  readonly providers: readonly EndpointHealth[];
  readonly warnings: readonly string[];
}

/** A provider (an endpoint) with its circuit breaker's state. */
export interface EndpointHealth extends ProviderHealth {
  readonly breaker: BreakerState;
}

export interface Readiness {
  readonly ready: boolean;
  readonly timestamp: Date;
  readonly checks: {
    readonly memoryAvailable: boolean;
    readonly diskAvailable: boolean;
    readonly providersInitialized: boolean;
    readonly ledgerReachable: boolean;
    /** False only when every configured endpoint's breaker is open: nothing could be served. */
    readonly endpointsAvailable: boolean;
  };
}

export interface SystemStatusSettings {
  readonly version: string;
  readonly dataDir: string;
  readonly minMemoryBytes: number;
  readonly minDiskBytes: number;
  /** Conditions known at start-up that operators should hear about (missing keys, ...). */
  readonly startupWarnings: readonly string[];
  /** Whether the ledger's database answers (never throws): without it nothing can be generated. */
  readonly ledgerReachable: () => Promise<boolean>;
  /** The routing layer's breaker for a provider (endpoint) name. */
  readonly breakerStateOf: (providerName: string) => BreakerState;
}

const cpuSampleMs = 100;
const percentOf = (part: number, whole: number): number => (whole > 0 ? Math.round((part / whole) * 1000) / 10 : 0);

/** Health, status and readiness from real figures of this process's machine. */
export class SystemStatusService {
  private readonly startedAt = Date.now();

  constructor(
    private readonly registry: ProviderRegistry,
    private readonly settings: SystemStatusSettings,
  ) {}

  health(): { status: 'healthy'; timestamp: Date; version: string } {
    return { status: 'healthy', timestamp: new Date(), version: this.settings.version };
  }

  async status(): Promise<SystemStatus> {
    const [system, { clashes }, ledgerReachable] = await Promise.all([
      this.measure(),
      this.registry.listModels(),
      this.settings.ledgerReachable(),
    ]);
    const providers = this.endpoints();
    const down = providers.filter((provider) => provider.state === 'down');
    const tripped = providers.filter((provider) => provider.breaker !== 'closed');
    const starved = !this.hasRoom(system);
    const warnings = [
      ...this.settings.startupWarnings,
      ...providers
        .filter((provider) => provider.state === 'unconfigured')
        .map((provider) => provider.detail ?? `${provider.name} is not configured`),
      ...down.map((provider) => `provider ${provider.name} is down: ${provider.detail ?? 'unknown reason'}`),
      ...tripped.map((provider) => `endpoint ${provider.name}'s circuit breaker is ${provider.breaker.replace('_', '-')}: calls skip it`),
      ...clashes,
      ...(starved ? ['memory or disk is below the readiness threshold'] : []),
      ...(ledgerReachable ? [] : ['the ledger database cannot be reached: generations are refused (ledger_unavailable)']),
    ];
    return {
      status: starved || !ledgerReachable ? 'unhealthy' : down.length > 0 || tripped.length > 0 ? 'degraded' : 'healthy',
      timestamp: new Date(),
      version: this.settings.version,
      uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      system,
      environment: { nodeVersion: process.version, platform: process.platform, arch: process.arch },
      providers,
      warnings,
    };
  }

  async readiness(): Promise<Readiness> {
    const [memory, disk, ledgerReachable] = [this.memory(), await this.disk(), await this.settings.ledgerReachable()];
    const checks = {
      memoryAvailable: memory.available >= this.settings.minMemoryBytes,
      diskAvailable: disk.free >= this.settings.minDiskBytes,
      providersInitialized: this.registry.health().every((provider) => provider.ready),
      ledgerReachable,
      endpointsAvailable: this.endpointsAvailable(),
    };
    return { ready: Object.values(checks).every(Boolean), timestamp: new Date(), checks };
  }

  private endpoints(): EndpointHealth[] {
    return this.registry.health().map((provider) => ({ ...provider, breaker: this.settings.breakerStateOf(provider.name) }));
  }

  private endpointsAvailable(): boolean {
    // An endpoint without models (the local provider with an empty directory) serves nothing either way.
    const configured = this.endpoints().filter((provider) => provider.state !== 'unconfigured' && provider.modelCount > 0);
    return configured.length === 0 || configured.some((provider) => provider.breaker !== 'open');
  }

  private hasRoom(system: ResourceUsage): boolean {
    return system.memory.available >= this.settings.minMemoryBytes && system.disk.free >= this.settings.minDiskBytes;
  }

  private async measure(): Promise<ResourceUsage> {
    const [disk, cpu] = await Promise.all([this.disk(), sampleCpu()]);
    return { memory: this.memory(), disk, cpu };
  }

  private memory(): ResourceUsage['memory'] {
    const total = os.totalmem();
    const available = os.freemem();
    const used = total - available;
    return { total, available, used, percent: percentOf(used, total) };
  }

  /** All zeros when DATA_DIR cannot be read (removed under a running server): not ready, never a 500. */
  private async disk(): Promise<ResourceUsage['disk']> {
    const stats = await statfs(this.settings.dataDir).catch(() => undefined);
    if (!stats) return { total: 0, free: 0, used: 0, percent: 0 };
    const total = stats.blocks * stats.bsize;
    const free = stats.bavail * stats.bsize;
    const used = total - stats.bfree * stats.bsize;
    return { total, free, used, percent: percentOf(used, total) };
  }
}

/** Busy share of all cores over a short sample. */
async function sampleCpu(): Promise<ResourceUsage['cpu']> {
  const before = os.cpus();
  await new Promise((resolve) => setTimeout(resolve, cpuSampleMs));
  const after = os.cpus();
  let busy = 0;
  let total = 0;
  after.forEach((core, index) => {
    const earlier = before[index];
    if (!earlier) return;
    const spent = (times: os.CpuInfo['times']): number => times.user + times.nice + times.sys + times.irq + times.idle;
    const elapsed = spent(core.times) - spent(earlier.times);
    total += elapsed;
    busy += elapsed - (core.times.idle - earlier.times.idle);
  });
  return { percent: percentOf(busy, total), count: after.length };
}
