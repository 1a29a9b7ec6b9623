import type { Logger } from '../logger';
import type { BudgetRepository } from '../storage/budget-repository';
import type { BudgetCounter } from '../storage/budget-types';
import { costUnitsToUsd } from '../storage/cost-units';

/** The shares of a limit whose crossing is announced. */
export const ALERT_THRESHOLDS = [0.5, 0.8, 1] as const;

export interface BudgetAlertSettings {
  /** BUDGET_WEBHOOK_URL: may carry a token, so it is never logged. */
  readonly webhookUrl: string;
  readonly budgets: Pick<BudgetRepository, 'get'>;
  readonly logger: Logger;
  /** The first retry's delay; each next one doubles, up to `maxAttempts` deliveries. */
  readonly retryBaseMs: number;
  readonly maxAttempts: number;
  readonly timeoutMs: number;
  readonly now?: () => Date;
}

/** What the webhook receives. */
export interface BudgetAlertEvent {
  readonly budget_id: string;
  readonly scope: string;
  readonly subject: string | null;
  readonly model_id: string | null;
  readonly period: string;
  readonly threshold: number;
  readonly spent_usd: number;
  readonly limit_usd: number;
  readonly period_start: string | null;
  readonly timestamp: string;
}

/**
 * Announces when a budget's settled spend first reaches 50%, 80% and 100% of its limit in a
 * period. Each settlement commits atomically with the spend it adds, so exactly one settlement,
 * on exactly one replica, moves a counter across a threshold: that one sends the event. Delivery
 * runs beside the requests, never in their way, and is retried with exponential backoff; an event
 * still undelivered when the process stops is lost.
 */
export class BudgetAlerts {
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly deliveries = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly settings: BudgetAlertSettings) {}

  /** The listener for LedgerRepository's `onBudgetSettled`. */
  readonly observe = (counters: readonly BudgetCounter[], addedUnits: number): void => {
    for (const counter of counters) {
      const before = counter.spentUnits - addedUnits;
      for (const threshold of ALERT_THRESHOLDS) {
        const mark = counter.limitUnits * threshold;
        if (counter.limitUnits > 0 && before < mark && counter.spentUnits >= mark) this.announce(counter, threshold);
      }
    }
  };

  /** Stops retrying; waits for deliveries already on the wire. */
  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    await Promise.allSettled([...this.deliveries]);
  }

  private announce(counter: BudgetCounter, threshold: number): void {
    const timestamp = (this.settings.now?.() ?? new Date()).toISOString();
    const delivery = this.settings.budgets
      .get(counter.budgetId)
      .then((budget) => {
        if (!budget) return; // deleted meanwhile: nobody to tell
        const event: BudgetAlertEvent = {
          budget_id: budget.id,
          scope: budget.scope,
          subject: budget.subject,
          model_id: budget.modelId,
          period: budget.period,
          threshold,
          spent_usd: costUnitsToUsd(counter.spentUnits),
          limit_usd: costUnitsToUsd(counter.limitUnits),
          period_start: counter.periodStartMs === 0 ? null : new Date(counter.periodStartMs).toISOString(),
          timestamp,
        };
        this.deliver(event, 1);
      })
      .catch((error: unknown) =>
        this.settings.logger.error({ err: error, budgetId: counter.budgetId }, 'could not prepare a budget alert'),
      );
    this.track(delivery);
  }

  private deliver(event: BudgetAlertEvent, attempt: number): void {
    if (this.closed) return;
    const sending = this.post(event).then((delivered) => {
      if (delivered) return;
      if (attempt >= this.settings.maxAttempts) {
        this.settings.logger.error(
          { budgetId: event.budget_id, threshold: event.threshold, attempts: attempt },
          'budget alert not delivered',
        );
        return;
      }
      const timer = setTimeout(
        () => {
          this.timers.delete(timer);
          this.deliver(event, attempt + 1);
        },
        this.settings.retryBaseMs * 2 ** (attempt - 1),
      );
      timer.unref();
      this.timers.add(timer);
    });
    this.track(sending);
  }

  /** True when the receiver answered 2xx. */
  private async post(event: BudgetAlertEvent): Promise<boolean> {
    try {
      const response = await fetch(this.settings.webhookUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(event),
        signal: AbortSignal.timeout(this.settings.timeoutMs),
      });
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok)
        this.settings.logger.warn({ budgetId: event.budget_id, status: response.status }, 'budget webhook refused an alert');
      return response.ok;
    } catch (error) {
      this.settings.logger.warn(
        { budgetId: event.budget_id, reason: error instanceof Error ? error.name : 'error' },
        'budget webhook unreachable',
      );
      return false;
    }
  }

  private track(promise: Promise<void>): void {
    this.deliveries.add(promise);
    void promise.finally(() => this.deliveries.delete(promise));
  }
}
