import type { KeyLimits } from '../auth/api-keys';

/** Admins manage budgets and see every caller's records; members see their own. */
export type CallerRole = 'admin' | 'member';

/** Who is asking: an API key by name, or (with auth off) a client address. Services receive it; they never see HTTP. */
export interface Caller {
  /** Identifies the caller for rate limits and records; never the key itself. */
  readonly id: string;
  /** The name the ledger records and roles compare: the key's name, or `anonymous` with authentication off. */
  readonly name: string;
  readonly keyName?: string;
  readonly role: CallerRole;
  readonly team?: string;
  readonly limits?: KeyLimits;
}
