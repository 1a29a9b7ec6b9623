import type { ModelDescriptor, ProviderState } from './provider';

/** How soon a caller's request may trigger another discovery of a down upstream. */
const retryDelayMs = 1000;

export interface ModelDiscoverySettings {
  /** What the upstream serves now; throws when it cannot be asked. */
  readonly discover: (signal: AbortSignal) => Promise<ModelDescriptor[]>;
  /** Models known without asking (the catalog's), listed as unavailable while the upstream is down. */
  readonly configuredModels: readonly ModelDescriptor[];
  readonly intervalMs: number;
  readonly timeoutMs: number;
  /** Describes a failure for `status` and for unavailable models; must not leak secrets. */
  readonly describeFailure: (error: unknown) => string;
}

/**
 * Keeps a provider's model list fresh: discovers at start, then every `intervalMs`, and again on demand
 * when the upstream was down, so an endpoint that comes back is noticed without a restart.
 */
export class ModelDiscovery {
  private state: ProviderState = 'down';
  private detail: string | undefined = 'discovery has not run yet';
  private models: readonly ModelDescriptor[] = [];
  private lastAttemptAt = 0;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private everCompleted = false;
  private unavailable:
    | { readonly models: readonly ModelDescriptor[]; readonly reason: string; readonly list: readonly ModelDescriptor[] }
    | undefined;

  constructor(private readonly settings: ModelDiscoverySettings) {}

  start(): void {
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.settings.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Runs one discovery, or joins the one in flight. Never throws. */
  refresh(): Promise<void> {
    this.inFlight ??= this.discoverOnce().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  async listModels(): Promise<readonly ModelDescriptor[]> {
    if (!this.everCompleted) {
      await this.refresh();
    } else if (this.state === 'down' && Date.now() - this.lastAttemptAt >= retryDelayMs) {
      // Retry in the background: a dead endpoint must not slow down callers of the other providers.
      void this.refresh();
    }
    return this.state === 'up' ? this.models : this.unavailableModels();
  }

  get health(): { state: ProviderState; detail: string | undefined; modelCount: number } {
    const count = this.state === 'up' ? this.models.length : this.unavailableModels().length;
    return { state: this.state, detail: this.detail, modelCount: count };
  }

  /** True once the first discovery has finished, whatever its outcome. */
  get initialized(): boolean {
    return this.everCompleted;
  }

  private async discoverOnce(): Promise<void> {
    this.lastAttemptAt = Date.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), this.settings.timeoutMs);
    try {
      this.models = await this.settings.discover(controller.signal);
      this.state = 'up';
      this.detail = undefined;
    } catch (error) {
      this.state = 'down';
      this.detail = controller.signal.aborted
        ? `model discovery timed out after ${this.settings.timeoutMs} ms`
        : this.settings.describeFailure(error);
    } finally {
      clearTimeout(timer);
      this.everCompleted = true;
    }
  }

  /**
   * Last known and configured models, marked with why they cannot serve: one list for as long as the last
   * known models and the reason stay the same, so that a provider's lookups can index it once.
   */
  private unavailableModels(): readonly ModelDescriptor[] {
    const reason = this.detail ?? 'provider is down';
    if (this.unavailable?.models === this.models && this.unavailable.reason === reason) return this.unavailable.list;
    const byId = new Map<string, ModelDescriptor>();
    for (const model of [...this.settings.configuredModels, ...this.models]) byId.set(model.id, model);
    const list = [...byId.values()].map((model) => ({ ...model, unavailableReason: reason }));
    this.unavailable = { models: this.models, reason, list };
    return list;
  }
}
