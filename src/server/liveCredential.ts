/**
 * Long-lived responses (live output, downloads) end when the credential that opened them stops
 * working: a revoked token, a signed-out or expired session. A wake-up ends them at once (on any
 * replica, through the notifier); a check every second covers a wake-up that was lost.
 */
import type { Core } from '../core/context.js';
import { topics } from '../core/notifier.js';
import type { Caller } from './userAuth.js';

const RECHECK_MS = 1000;

export interface CredentialWatch {
  /** Aborted when the credential stops working. */
  signal: AbortSignal;
  /** True while the credential works; looks in the store at most once a second. */
  valid(): Promise<boolean>;
  stop(): void;
}

export function watchCredential(core: Core, caller: Caller): CredentialWatch {
  const revoked = new AbortController();
  const end = () => revoked.abort();
  const unsubscribe = [core.notifier.subscribe(topics.credential('user', caller.user.id), end)];
  if (caller.session) unsubscribe.push(core.notifier.subscribe(topics.credential('session', caller.session.idHash), end));
  if (caller.actor.type === 'token' && caller.actor.id) unsubscribe.push(core.notifier.subscribe(topics.credential('token', caller.actor.id), end));
  let checkedAt = Date.now();
  return {
    signal: revoked.signal,
    async valid() {
      if (revoked.signal.aborted) return false;
      if (Date.now() - checkedAt < RECHECK_MS) return true;
      checkedAt = Date.now();
      if (!(await stillValid(core, caller))) end();
      return !revoked.signal.aborted;
    },
    stop: () => unsubscribe.forEach((u) => u()),
  };
}

async function stillValid(core: Core, caller: Caller): Promise<boolean> {
  if (caller.session) {
    const s = await core.store.findSession(caller.session.idHash);
    return s !== undefined && s.expiresAt > core.now();
  }
  if (caller.actor.type === 'token' && caller.actor.id) {
    const t = await core.store.getToken(caller.actor.id);
    return t !== undefined && t.revokedAt === null;
  }
  return true;
}
