/** Read-only database mode in the dashboard: the badge on executions and schedules, and the run form's checkbox. */
import type { CommandView } from '../shared/api.js';
import { h, uid } from './dom.js';

export function readOnlyBadge(): HTMLElement {
  return h('span', { class: 'badge badge-read-only', 'data-testid': 'read-only', title: 'Read-only database mode: every write to the database is refused.' }, 'read-only');
}

/**
 * "Read-only database mode": checked and fixed when the command is read-only by default (a run
 * cannot make it writable), free otherwise. `checked()` says what to send.
 */
export function readOnlyCheckbox(c: Pick<CommandView, 'read_only' | 'read_only_default' | 'django_read_only'> | null, initial = false): { el: HTMLElement; checked(): boolean } {
  const id = uid('read-only');
  const fixed = c?.read_only === true;
  const box = h('input', { type: 'checkbox', id, name: 'read_only', checked: fixed || initial, disabled: fixed, 'data-testid': 'read-only-checkbox' });
  const why = fixed
    ? `Always read-only: ${[c?.django_read_only ? 'listed in DJANGOCOMMAND_READONLY_COMMANDS' : null, c?.read_only_default ? 'the command is read-only by default on the server' : null].filter(Boolean).join(' and ')}.`
    : 'Every write to the database is refused; the command fails if it tries one. Needs the TypeScript runner.';
  const el = h('div', { class: 'field field-checkbox' }, h('label', { for: id }, box, ' Read-only database mode'), h('p', { class: 'muted small' }, why));
  return { el, checked: () => box.checked };
}
