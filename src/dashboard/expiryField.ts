/**
 * When a token stops working: never, after 7, 30 or 90 days, or on a chosen date (end of that
 * day, local time). Personal API tokens and CI tokens use the same choice.
 */
import { h, uid } from './dom.js';
import { field, setFieldError } from './ui.js';

const DAY_MS = 86_400_000;
const CHOICES: Array<[string, string]> = [
  ['', 'Never'],
  ['7', 'In 7 days'],
  ['30', 'In 30 days'],
  ['90', 'In 90 days'],
  ['date', 'On a date…'],
];

export interface ExpiryField {
  el: HTMLElement;
  /** ISO time, null for never; undefined (with the error shown) when the date is missing or past. */
  read(): string | null | undefined;
  reset(): void;
}

export function expiryField(label = 'Expires'): ExpiryField {
  const id = uid('expiry');
  const select = h('select', { name: 'expires', id, 'data-testid': 'token-expiry' }, CHOICES.map(([v, t]) => h('option', { value: v }, t)));
  const date = h('input', { type: 'date', name: 'expires-on', 'aria-label': `${label}: date`, hidden: true, min: new Date(Date.now() + DAY_MS).toISOString().slice(0, 10) });
  const f = field(label, select);
  f.el.append(date);
  select.addEventListener('change', () => {
    date.hidden = select.value !== 'date';
    setFieldError(select, f.error, null);
    if (!date.hidden) date.focus();
  });
  return {
    el: f.el,
    read() {
      setFieldError(select, f.error, null);
      if (select.value === '') return null;
      if (select.value !== 'date') return new Date(Date.now() + Number(select.value) * DAY_MS).toISOString();
      const [y, m, d] = date.value.split('-').map(Number);
      const at = y ? new Date(y, m - 1, d, 23, 59, 59) : null;
      if (!at || at.getTime() <= Date.now()) {
        setFieldError(select, f.error, 'Pick a day from tomorrow on.');
        date.focus();
        return undefined;
      }
      return at.toISOString();
    },
    reset() {
      select.value = '';
      date.value = '';
      date.hidden = true;
    },
  };
}

/** "never", or the date a token expires (and "expired" once it has). */
export function expiryText(expiresAt: string | null): string {
  if (!expiresAt) return 'never';
  const at = new Date(expiresAt);
  return `${at.getTime() <= Date.now() ? 'expired ' : ''}${at.toLocaleDateString()}`;
}
