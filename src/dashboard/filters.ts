/**
 * The filter bar of the history and audit pages: the filters live in the URL's query (so a
 * filtered view can be shared and survives a reload), and pages read them back from there.
 */
import { api, type UserView } from './api.js';
import { h, uid } from './dom.js';
import { fromLocalInput, toLocalInput } from './format.js';
import { isOwner, signedInUser } from './session.js';

export type Filters = Record<string, string>;

export function readFilters(query: URLSearchParams, names: string[]): Filters {
  const f: Filters = {};
  for (const n of names) {
    const v = query.get(n);
    if (v) f[n] = v;
  }
  return f;
}

export interface FilterField {
  name: string;
  label: string;
  control: HTMLInputElement | HTMLSelectElement;
  /** From the control's value to the query's. */
  read?: () => string;
  /** Goes with the control (a datalist of suggestions). */
  extra?: HTMLElement;
}

export function textFilter(name: string, label: string, value: string | undefined, opts: { placeholder?: string; list?: string[] } = {}): FilterField {
  const listId = opts.list ? uid('list') : null;
  const control = h('input', { type: 'search', name, value: value ?? '', placeholder: opts.placeholder ?? '', list: listId, autocomplete: 'off', spellcheck: 'false' });
  const extra = listId && opts.list ? h('datalist', { id: listId }, opts.list.map((v) => h('option', { value: v }))) : undefined;
  return { name, label, control, extra };
}

export function selectFilter(name: string, label: string, value: string | undefined, options: Array<[string, string]>): FilterField {
  const control = h('select', { name }, options.map(([v, text]) => h('option', { value: v, selected: v === (value ?? '') }, text)));
  if (value && !options.some(([v]) => v === value)) control.append(h('option', { value, selected: true }, value));
  return { name, label, control };
}

export function timeFilter(name: string, label: string, value: string | undefined): FilterField {
  const control = h('input', { type: 'datetime-local', name, value: toLocalInput(value ?? null) });
  return { name, label, control, read: () => fromLocalInput(control.value) };
}

/** The people a filter can name: everyone for an owner, else only the person signed in. */
export async function peopleOptions(signal: AbortSignal): Promise<Array<[string, string]>> {
  const me = signedInUser();
  const options: Array<[string, string]> = [['', 'Anyone']];
  let users: UserView[] = [];
  if (isOwner()) {
    try {
      users = (await api.users(signal)).items;
    } catch {
      users = [];
    }
  }
  if (users.length) for (const u of users) options.push([u.id, u.id === me?.id ? `${u.email} (me)` : u.email]);
  else if (me) options.push([me.id, `Me (${me.email})`]);
  return options;
}

/** A row of labelled filters; `onApply` gets the new query whenever one changes. */
export function filterBar(fields: FilterField[], onApply: (f: Filters) => void, extra: HTMLElement[] = []): HTMLElement {
  // Selects and times apply at once; text on Enter or on leaving it. Enter fires both
  // "change" and "submit": the second of two identical applications is dropped.
  let last = '';
  let lastAt = 0;
  const apply = (explicit: boolean) => {
    const f = read();
    const key = JSON.stringify(f);
    if (key === last && (!explicit || Date.now() - lastAt < 500)) return;
    last = key;
    lastAt = Date.now();
    onApply(f);
  };
  const read = (): Filters => {
    const f: Filters = {};
    for (const x of fields) {
      const v = (x.read ? x.read() : x.control.value).trim();
      if (v) f[x.name] = v;
    }
    return f;
  };
  const form = h(
    'form',
    {
      class: 'filters',
      role: 'search',
      onSubmit: (e: SubmitEvent) => {
        e.preventDefault();
        apply(true);
      },
    },
    fields.map((x) => {
      const id = x.control.id || uid('filter');
      x.control.id = id;
      return h('div', { class: 'filter' }, h('label', { for: id }, x.label), x.control, x.extra);
    }),
    h(
      'div',
      { class: 'filter filter-actions' },
      h('button', { type: 'submit', class: 'button' }, 'Apply'),
      h('button', {
        type: 'button',
        class: 'button button-plain',
        onClick: () => {
          for (const x of fields) x.control.value = '';
          apply(true);
        },
      }, 'Clear'),
      ...extra,
    ),
  );
  for (const x of fields) x.control.addEventListener('change', () => apply(false));
  last = JSON.stringify(read());
  return form;
}
