/** What every use case needs: the store, the clock, wake-ups and the settings that shape behaviour. */
import type { Store } from '../store/store.js';
import type { Notifier } from './notifier.js';

export interface CoreSettings {
  /** Default per-execution timeout when a request names none. */
  defaultTimeoutSeconds: number;
  /** Default time a runner has to start an execution before it ends `expired`. */
  defaultStartTimeoutSeconds: number;
  /** Default number of active executions allowed per command and project. */
  defaultConcurrency: number;
  /** A runner not heard from for this long is shown offline. */
  runnerOfflineAfterMs: number;
  /** ...and after this much longer, what it was running becomes `lost`. */
  lostGraceMs: number;
  /** How long after its timeout a runner may take to report a timed-out execution. */
  timeoutGraceMs: number;
  /** Accepted distance between a runner request's timestamp and the server clock. */
  replayWindowSeconds: number;
}

export const DEFAULT_CORE_SETTINGS: CoreSettings = {
  defaultTimeoutSeconds: 3600,
  defaultStartTimeoutSeconds: 600,
  defaultConcurrency: 1,
  runnerOfflineAfterMs: 90_000,
  lostGraceMs: 60_000,
  timeoutGraceMs: 60_000,
  replayWindowSeconds: 300,
};

export interface Core {
  store: Store;
  notifier: Notifier;
  now: () => number;
  settings: CoreSettings;
}
