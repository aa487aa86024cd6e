/** Small pieces every page uses: headings, notices, labelled fields, the "shown once" secret. */
import { ApiError } from './api.js';
import { h, uid, type Child } from './dom.js';

/** The page's heading; focused after navigation so keyboard and screen-reader users land there. */
export function pageTitle(text: string, ...after: Child[]): HTMLElement {
  document.title = `${text} · djangocommand`;
  return h('div', { class: 'page-head' }, h('h1', { tabindex: '-1', id: 'page-title' }, text), after.length ? h('div', { class: 'page-actions' }, ...after) : null);
}

export function errorMessage(err: unknown): string {
  if (err instanceof ApiError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function notice(kind: 'error' | 'info' | 'success' | 'warning', ...content: Child[]): HTMLElement {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...content);
}

export function errorNotice(err: unknown): HTMLElement {
  const code = err instanceof ApiError && err.code.startsWith('DC_') ? h('code', { class: 'error-code' }, err.code) : null;
  return notice('error', errorMessage(err), code ? ' ' : null, code);
}

export function loading(what = 'Loading…'): HTMLElement {
  return h('p', { class: 'loading muted', role: 'status' }, what);
}

export function empty(text: string, ...more: Child[]): HTMLElement {
  return h('div', { class: 'empty' }, h('p', null, text), ...more);
}

/** A label + control + help + error slot, wired with ids for assistive technology. */
export function field(label: Child, control: HTMLElement, opts: { help?: string | null; required?: boolean; id?: string } = {}): { el: HTMLElement; error: HTMLElement } {
  const id = control.id || opts.id || uid('field');
  control.id = id;
  const error = h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
  const help = opts.help ? h('p', { class: 'field-help', id: `${id}-help` }, opts.help) : null;
  control.setAttribute('aria-describedby', [help ? `${id}-help` : '', `${id}-error`].filter(Boolean).join(' '));
  const el = h(
    'div',
    { class: 'field' },
    h('label', { for: id }, label, opts.required ? h('span', { class: 'required', 'aria-hidden': 'true', title: 'required' }, ' *') : null),
    control,
    help,
    error,
  );
  return { el, error };
}

export function setFieldError(control: HTMLElement, errorEl: HTMLElement, message: string | null): void {
  errorEl.textContent = message ?? '';
  if (message) control.setAttribute('aria-invalid', 'true');
  else control.removeAttribute('aria-invalid');
}

/** Copies text, with a fallback where the Clipboard API is not available (plain http). */
export async function copyText(text: string, fallbackInput?: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (!fallbackInput) return false;
    fallbackInput.select();
    return document.execCommand('copy');
  }
}

/** A secret the server shows exactly once (runner key, API token), with a copy button. */
export function secretOnce(title: string, secret: string, hint: string): HTMLElement {
  const input = h('input', { type: 'text', readonly: true, value: secret, class: 'secret-value mono', 'aria-label': title, spellcheck: 'false' });
  const status = h('span', { class: 'muted copy-status', 'aria-live': 'polite' });
  const copy = h('button', {
    type: 'button',
    class: 'button',
    onClick: async () => {
      status.textContent = (await copyText(secret, input)) ? 'Copied.' : 'Select it and copy by hand.';
    },
  }, 'Copy');
  input.addEventListener('focus', () => input.select());
  return h(
    'div',
    { class: 'secret-once', role: 'status' },
    h('p', { class: 'secret-title' }, h('strong', null, title), ' — shown only this once. ', hint),
    h('div', { class: 'secret-row' }, input, copy),
    status,
  );
}

export function button(label: Child, onClick: (e: MouseEvent) => void, opts: { kind?: 'primary' | 'danger' | 'plain'; disabled?: boolean; title?: string; testid?: string } = {}): HTMLButtonElement {
  return h('button', { type: 'button', class: `button ${opts.kind ? `button-${opts.kind}` : ''}`, onClick, disabled: opts.disabled ?? false, title: opts.title, 'data-testid': opts.testid }, label);
}

/** Cursor pagination with "Previous" made from the cursors already seen. */
export function pager(opts: { hasPrevious: boolean; next: string | null; onPrevious: () => void; onNext: () => void; label: string }): HTMLElement {
  return h(
    'nav',
    { class: 'pager', 'aria-label': opts.label },
    h('button', { type: 'button', class: 'button', disabled: !opts.hasPrevious, onClick: opts.onPrevious }, '← Previous'),
    h('button', { type: 'button', class: 'button', disabled: !opts.next, onClick: opts.onNext }, 'Next →'),
  );
}

/** Runs `fn` every `ms` until the page goes away; errors are shown by `fn` itself. */
export function every(ms: number, signal: AbortSignal, fn: () => Promise<void> | void): void {
  const timer = window.setInterval(() => {
    if (document.visibilityState === 'visible') void fn();
  }, ms);
  signal.addEventListener('abort', () => window.clearInterval(timer));
}

/**
 * A table whose cells carry their column's name (data-label), so that on a phone each row
 * can read as a small card ("STATUS cancelled", "COMMAND slow …") instead of scrolling sideways.
 */
export function dataTable(attrs: Record<string, string>, headers: string[], rows: HTMLTableRowElement[]): HTMLTableElement {
  for (const row of rows) {
    Array.from(row.cells).forEach((cell, i) => cell.setAttribute('data-label', headers[i] ?? ''));
  }
  return h('table', { class: 'table', ...attrs }, h('thead', null, h('tr', null, headers.map((t) => h('th', { scope: 'col' }, t)))), h('tbody', null, rows));
}
