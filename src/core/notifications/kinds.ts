/**
 * Event kinds, the words a channel subscribes to, and which kinds a raised event has. Pure.
 *   execution.ended   failure (failed, timed_out, lost, expired) | success (+ recovery: the first
 *                     success of that project's command after a failure); cancelled and
 *                     rejected executions notify nobody
 *   execution.slow    slow          runner.offline / runner.online   runner
 *   schedule.missed / schedule.skipped   missed             schedule.health   health
 *   channel.test      test (sent to the one channel it names, whatever it subscribes to)
 *   anything else     the word before its first dot: shell.writable → shell, approval.requested → approval
 */
import { closestNames } from '../../domain/suggest.js';
import type { ExecutionStatus } from '../../domain/execution.js';
import { UserError } from '../../shared/errors.js';

export const KNOWN_KINDS = ['failure', 'success', 'recovery', 'slow', 'runner', 'missed', 'health', 'shell', 'approval'] as const;
/** What a channel hears when it names nothing: what needs attention, not every success. */
export const DEFAULT_KINDS = ['failure', 'recovery', 'runner', 'missed', 'health', 'shell', 'approval'];
export const FAILURE_STATUSES: readonly ExecutionStatus[] = ['failed', 'timed_out', 'lost', 'expired'];
export const TEST_EVENT = 'channel.test';

const KIND_WORD = /^[a-z][a-z0-9_]{0,39}$/;

/** The kinds of an event; `recovery` is known only to the caller (it needs the previous run). */
export function kindsOf(type: string, details: Record<string, unknown>, recovery = false): string[] {
  switch (type) {
    case 'execution.ended': {
      const status = details.status as ExecutionStatus;
      if (FAILURE_STATUSES.includes(status)) return ['failure'];
      if (status === 'succeeded') return recovery ? ['success', 'recovery'] : ['success'];
      return [];
    }
    case 'execution.slow':
      return ['slow'];
    case 'runner.offline':
    case 'runner.online':
      return ['runner'];
    case 'schedule.missed':
    case 'schedule.skipped':
      return ['missed'];
    case 'schedule.health':
      return ['health'];
    case TEST_EVENT:
      return ['test'];
    default: {
      const prefix = type.split('.')[0];
      return KIND_WORD.test(prefix) ? [prefix] : [];
    }
  }
}

/** The `on` list a person typed ("failure,recovery"), checked; a near miss of a known kind is refused with the fix. */
export function parseKinds(input: string | readonly string[] | undefined, field = 'on'): string[] {
  if (input === undefined) return [...DEFAULT_KINDS];
  const words = (typeof input === 'string' ? input.split(',') : [...input]).map((w) => w.trim().toLowerCase()).filter(Boolean);
  if (words.length === 0) throw new UserError('DC_VALIDATION', `${field} names no event kind; give some of ${KNOWN_KINDS.join(', ')}.`, { field });
  for (const w of words) {
    if ((KNOWN_KINDS as readonly string[]).includes(w)) continue;
    const near = closestNames(w, KNOWN_KINDS);
    if (!KIND_WORD.test(w) || near.length > 0) {
      const hint = near.length ? `did you mean ${near.join(' or ')}? ` : '';
      throw new UserError('DC_VALIDATION', `"${w}" is not an event kind: ${hint}Kinds: ${KNOWN_KINDS.join(', ')} (or the first word of an event type other parts raise).`, { field });
    }
  }
  return [...new Set(words)];
}

/** Comma-separated globs (`migrate,clear*`): `*` any run of characters, `?` one. */
export function parseCommandGlobs(input: string | null | undefined): string | null {
  if (input === undefined || input === null) return null;
  const globs = input.split(',').map((g) => g.trim()).filter(Boolean);
  if (globs.length === 0) return null;
  for (const g of globs) {
    if (!/^[A-Za-z0-9_*?.:-]{1,200}$/.test(g)) {
      throw new UserError('DC_VALIDATION', `commands "${g}" is not a glob of command names: use letters, digits, _, -, * and ?, e.g. "migrate,clear*".`, { field: 'commands' });
    }
  }
  return globs.join(',');
}

export function commandMatches(globs: string | null, command: string | undefined): boolean {
  // Events about no command (a runner went offline) are not filtered by command.
  if (globs === null || command === undefined) return true;
  return globs.split(',').some((g) => new RegExp(`^${g.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`).test(command));
}
