/**
 * Long-lived responses (live output, downloads, shells) end when the credential that opened them
 * stops working: a revoked or expired token, a signed-out or expired session, a disabled or
 * removed person, or a role that no longer reaches the project. A wake-up ends them at once (on
 * any replica, through the notifier); a check every second covers a wake-up that was lost.
 */
import type { Core } from '../core/context.js';
import { topics } from '../core/notifier.js';
import type { Caller } from './userAuth.js';
import { freshGrants } from '../core/access.js';
import { may, type Permission } from '../domain/roles.js';

const RECHECK_MS = 1000;

export interface CredentialWatch {
  /** Aborted when the credential stops working. */
  signal: AbortSignal;
  /** True while the credential works; looks in the store at most once a second. */
  valid(): Promise<boolean>;
  stop(): void;
}

/** `access`: the project and the permission the response needs, checked again with the credential. */
export function watchCredential(core: Core, caller: Caller, access?: { projectId: string; permission: Permission }): CredentialWatch {
  const revoked = new AbortController();
  const end = () => revoked.abort();
  const unsubscribe: Array<() => void> = [];
  if (caller.user) unsubscribe.push(core.notifier.subscribe(topics.credential('user', caller.user.id), end));
  if (caller.session) unsubscribe.push(core.notifier.subscribe(topics.credential('session', caller.session.idHash), end));
  if (caller.credential.kind === 'token' || caller.credential.kind === 'ci') unsubscribe.push(core.notifier.subscribe(topics.credential('token', caller.credential.id), end));
  let checkedAt = Date.now();
  return {
    signal: revoked.signal,
    async valid() {
      if (revoked.signal.aborted) return false;
      if (Date.now() - checkedAt < RECHECK_MS) return true;
      checkedAt = Date.now();
      if (!(await stillValid(core, caller, access))) end();
      return !revoked.signal.aborted;
    },
    stop: () => unsubscribe.forEach((u) => u()),
  };
}

async function stillValid(core: Core, caller: Caller, access?: { projectId: string; permission: Permission }): Promise<boolean> {
  const grants = await freshGrants(core, caller);
  return grants !== undefined && (!access || may(grants, access.projectId, access.permission));
}
