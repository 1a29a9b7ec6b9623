import { Field, Float, Int, ObjectType, registerEnumType } from 'type-graphql';
import { DateTimeISO, SafeInt } from '../shared/scalars';

export const LivenessStatus = { healthy: 'healthy', unhealthy: 'unhealthy' } as const;
registerEnumType(LivenessStatus, {
  name: 'LivenessStatus',
  description: 'Whether the service process is able to answer.',
  valuesConfig: {
    healthy: { description: 'The service answers requests.' },
    unhealthy: { description: 'The service cannot serve requests.' },
  },
});

export const SystemHealth = { healthy: 'healthy', degraded: 'degraded', unhealthy: 'unhealthy' } as const;
registerEnumType(SystemHealth, {
  name: 'SystemHealth',
  description: 'Overall state of the service and the providers behind it.',
  valuesConfig: {
    healthy: { description: 'Every configured provider is up and resources suffice.' },
    degraded: { description: 'At least one configured provider is down; others still serve.' },
    unhealthy: { description: 'Memory or disk is below the readiness threshold.' },
  },
});

export const ProviderState = { up: 'up', down: 'down', unconfigured: 'unconfigured' } as const;
registerEnumType(ProviderState, {
  name: 'ProviderState',
  description: 'Whether a provider can serve its models.',
  valuesConfig: {
    up: { description: 'The provider answered its last model discovery.' },
    down: { description: 'The provider could not be reached or refused the gateway.' },
    unconfigured: { description: 'The provider lacks configuration, such as an API key.' },
  },
});

export const BreakerState = { closed: 'closed', open: 'open', half_open: 'half_open' } as const;
registerEnumType(BreakerState, {
  name: 'BreakerState',
  description: "An endpoint's circuit breaker.",
  valuesConfig: {
    closed: { description: 'Calls go to the endpoint.' },
    open: { description: 'The endpoint failed repeatedly: calls skip it until a probe may try it again.' },
    half_open: { description: 'One probe call is allowed through; its outcome closes or reopens the breaker.' },
  },
});

@ObjectType({ description: 'Basic liveness of the service.' })
export class HealthResponse {
  @Field(() => LivenessStatus, { description: 'healthy while the service answers.' })
  status!: keyof typeof LivenessStatus;

  @Field(() => DateTimeISO, { description: 'When the answer was produced (ISO 8601).' })
  timestamp!: Date;

  @Field({ description: 'The service version.' })
  version!: string;
}

@ObjectType({ description: 'Memory of the machine, in bytes.' })
export class MemoryUsage {
  @Field(() => SafeInt, { description: 'Total memory in bytes.' })
  total!: number;

  @Field(() => SafeInt, { description: 'Memory available to new work, in bytes.' })
  available!: number;

  @Field(() => SafeInt, { description: 'Memory in use, in bytes.' })
  used!: number;

  @Field(() => Float, { description: 'Share of memory in use, 0 to 100.' })
  percent!: number;
}

@ObjectType({ description: 'File system of the data directory, in bytes.' })
export class DiskUsage {
  @Field(() => SafeInt, { description: 'Size of the file system in bytes.' })
  total!: number;

  @Field(() => SafeInt, { description: 'Bytes available to the service.' })
  free!: number;

  @Field(() => SafeInt, { description: 'Bytes in use.' })
  used!: number;

  @Field(() => Float, { description: 'Share of the file system in use, 0 to 100.' })
  percent!: number;
}

@ObjectType({ description: 'Processor load over a short sample.' })
export class CpuUsage {
  @Field(() => Float, { description: 'Busy share of all cores, 0 to 100, over a 100 ms sample.' })
  percent!: number;

  @Field(() => Int, { description: 'Number of logical cores.' })
  count!: number;
}

@ObjectType({ description: 'Resource usage of the machine.' })
export class SystemResources {
  @Field(() => MemoryUsage, { description: 'Memory figures.' })
  memory!: MemoryUsage;

  @Field(() => DiskUsage, { description: 'Disk figures for the data directory.' })
  disk!: DiskUsage;

  @Field(() => CpuUsage, { description: 'Processor figures.' })
  cpu!: CpuUsage;
}

@ObjectType({ description: 'The runtime the service runs on.' })
export class RuntimeEnvironment {
  @Field({ name: 'node_version', description: 'Node.js version, such as v20.20.2.' })
  nodeVersion!: string;

  @Field({ description: 'Operating system platform, such as linux.' })
  platform!: string;

  @Field({ description: 'Processor architecture, such as x64.' })
  arch!: string;
}

@ObjectType({ description: 'State of one configured provider.' })
export class ProviderStatus {
  @Field({ description: 'Provider name: openai, or the name of an OpenAI-compatible endpoint.' })
  name!: string;

  @Field({ description: 'Adapter kind: openai or openai-compatible.' })
  kind!: string;

  @Field(() => ProviderState, { description: 'Whether the provider can serve.' })
  state!: keyof typeof ProviderState;

  @Field(() => String, { nullable: true, description: 'Why the provider is down or unconfigured.' })
  detail?: string;

  @Field(() => Int, { name: 'model_count', description: 'Number of models the provider lists.' })
  modelCount!: number;

  @Field({ description: 'False until the provider finished its first model discovery.' })
  ready!: boolean;

  @Field(() => BreakerState, { description: "The endpoint's circuit breaker: closed, open or half_open." })
  breaker!: keyof typeof BreakerState;
}

@ObjectType({ description: 'Detailed status: resources, runtime, providers and warnings.' })
export class DetailedStatusResponse {
  @Field(() => SystemHealth, { description: 'healthy, degraded (a provider is down) or unhealthy (resources exhausted).' })
  status!: keyof typeof SystemHealth;

  @Field(() => DateTimeISO, { description: 'When the answer was produced (ISO 8601).' })
  timestamp!: Date;

  @Field({ description: 'The service version.' })
  version!: string;

  @Field(() => Int, { name: 'uptime_seconds', description: 'Seconds since the service started.' })
  uptimeSeconds!: number;

  @Field(() => SystemResources, { description: 'Memory, disk and processor figures.' })
  system!: SystemResources;

  @Field(() => RuntimeEnvironment, { description: 'Runtime versions and platform.' })
  environment!: RuntimeEnvironment;

  @Field(() => [ProviderStatus], { description: 'Every configured provider and its state.' })
  providers!: readonly ProviderStatus[];

  @Field(() => [String], { description: 'Conditions an operator should know about.' })
  warnings!: readonly string[];
}

@ObjectType({ description: 'The individual readiness checks.' })
export class ReadinessChecks {
  @Field({ name: 'memory_available', description: 'Available memory is above READY_MIN_MEMORY_MB.' })
  memoryAvailable!: boolean;

  @Field({ name: 'disk_available', description: 'Free disk in the data directory is above READY_MIN_DISK_MB.' })
  diskAvailable!: boolean;

  @Field({ name: 'providers_initialized', description: 'Every provider finished its first model discovery.' })
  providersInitialized!: boolean;

  @Field({ name: 'ledger_reachable', description: "The ledger's database answers; without it generations are refused." })
  ledgerReachable!: boolean;

  @Field({ name: 'endpoints_available', description: "False only when every configured endpoint's circuit breaker is open." })
  endpointsAvailable!: boolean;
}

@ObjectType({ description: 'Whether the service should receive traffic.' })
export class ReadinessResponse {
  @Field({ description: 'True when every check passes.' })
  ready!: boolean;

  @Field(() => DateTimeISO, { description: 'When the answer was produced (ISO 8601).' })
  timestamp!: Date;

  @Field(() => ReadinessChecks, { description: 'The checks behind `ready`.' })
  checks!: ReadinessChecks;
}
