/**
 * A form made from a command's argparse definition (the "commands" schema of bootstrap.py):
 * text, number (int/float), select (choices), checkbox (store_true/false/const), repeated values
 * (append/extend, nargs '*', '+', N), mutually exclusive groups as a choice of one, subcommands
 * as a select that swaps the sub-form, and Django's own options folded under "Common options".
 *
 * The form turns into an argv list. Each field's own values are checked as argparse would as
 * the person types (validateArgv on that argument alone), and the whole argv is checked too
 * (required arguments, clashes, leftovers), so errors show next to their field before
 * anything runs.
 */
import { validateArgv, type ArgSchema, type ArgvProblem } from '../domain/argvValidation.js';
import { h, uid } from './dom.js';

export interface Arg extends ArgSchema {
  default?: unknown;
  suppressed?: boolean;
  help?: string | null;
  const?: unknown;
  common?: boolean;
  hidden?: boolean;
}
export interface Parser {
  prog?: string;
  description?: string | null;
  epilog?: string | null;
  arguments: Arg[];
  groups: Array<{ required: boolean; dests: string[] }>;
  subcommands: null | {
    dest: string;
    required: boolean;
    metavar?: string | null;
    help?: string | null;
    choices: Record<string, Parser>;
    choices_help?: Record<string, string | null>;
    aliases?: Record<string, string>;
  };
}

export function isParser(s: unknown): s is Parser {
  return typeof s === 'object' && s !== null && Array.isArray((s as Parser).arguments) && Array.isArray((s as Parser).groups);
}

const FLAG_KINDS = new Set(['store_true', 'store_false', 'store_const', 'append_const']);
const SKIPPED_KINDS = new Set(['help', 'version']);
const NEGATIVE_NUMBER = /^-\d+(\.\d*)?$/;

type ValueInput = HTMLInputElement | HTMLSelectElement;

interface Control {
  /** The dests whose problems this control shows. */
  dests: string[];
  el: HTMLElement;
  errorEl: HTMLElement;
  focusEl(): HTMLElement;
  options(): string[];
  positionals(): string[];
  /** This field's own values, judged alone. */
  ownProblem(): ArgvProblem | undefined;
  touched: boolean;
}

const isPositional = (a: Arg) => a.option_strings.length === 0;
const longest = (a: Arg) => a.option_strings.find((o) => o.startsWith('--')) ?? a.option_strings[0];
const looksLikeOption = (v: string) => v.startsWith('-') && v !== '-' && !NEGATIVE_NUMBER.test(v);
const takesMany = (a: Arg) => a.kind === 'append' || a.kind === 'extend' || a.nargs === '*' || a.nargs === '+' || (typeof a.nargs === 'number' && a.nargs > 1);
const label = (a: Arg) => (isPositional(a) ? (typeof a.metavar === 'string' ? a.metavar : a.dest) : a.option_strings.join(', '));

function shownDefault(a: Arg): string | null {
  if (a.suppressed || !('default' in a)) return null;
  const d = a.default;
  if (d === null || d === undefined || d === false || d === '' || (Array.isArray(d) && d.length === 0)) return null;
  if (Array.isArray(d)) return d.map(String).join(' ');
  if (typeof d === 'object') return null;
  return String(d);
}

function typeHint(a: Arg): string | null {
  const parts: string[] = [];
  if (a.choices && a.choices.length) parts.push('choice');
  else if (a.type === 'int') parts.push('whole number');
  else if (a.type === 'float') parts.push('number');
  if (takesMany(a)) parts.push(typeof a.nargs === 'number' ? `${a.nargs} values` : a.nargs === '+' ? 'one or more values' : 'repeatable');
  return parts.length ? parts.join(', ') : null;
}

/** One value widget: select for choices, number for int/float, text otherwise. */
function valueInput(a: Arg, id: string, onInput: () => void, placeholderDefault = true): ValueInput {
  const def = placeholderDefault ? shownDefault(a) : null;
  if (a.choices && a.choices.length > 0) {
    const select = h(
      'select',
      { id, name: a.dest, onChange: onInput },
      h('option', { value: '' }, def !== null ? `default: ${def}` : a.required ? '— choose —' : '—'),
      a.choices.map((c) => h('option', { value: String(c) }, String(c))),
    );
    return select;
  }
  const numeric = a.type === 'int' || a.type === 'float';
  const input = h('input', {
    id,
    name: a.dest,
    type: numeric ? 'number' : 'text',
    step: a.type === 'int' ? '1' : a.type === 'float' ? 'any' : null,
    inputmode: a.type === 'int' ? 'numeric' : a.type === 'float' ? 'decimal' : null,
    placeholder: def ?? (typeof a.metavar === 'string' ? a.metavar : null),
    autocomplete: 'off',
    spellcheck: 'false',
    autocapitalize: 'none',
    class: numeric ? 'input-number' : 'mono',
    onInput,
  });
  return input;
}

/** A number field the browser cannot read ("1e", "--") reads as "" with badInput set. */
function readValue(input: ValueInput, a: Arg, label: string): { value: string; problem?: ArgvProblem } {
  if (input instanceof HTMLInputElement && input.type === 'number' && input.validity.badInput) {
    return { value: '', problem: { field: a.dest, message: `argument ${label}: invalid ${a.type} value` } };
  }
  return { value: input.value };
}

function optionTokens(a: Arg, value: string): string[] {
  const opt = longest(a);
  if (!looksLikeOption(value)) return [opt, value];
  return opt.startsWith('--') ? [`${opt}=${value}`] : [`${opt}${value}`];
}

/** Judges one argument's values alone: types and choices, as argparse would. */
function judgeAlone(a: Arg, tokens: string[], positional: boolean): ArgvProblem | undefined {
  if (tokens.length === 0) return undefined;
  const alone = { arguments: [{ ...a, required: false }], groups: [], subcommands: null };
  const problem = validateArgv(alone, positional && tokens.some(looksLikeOption) ? ['--', ...tokens] : tokens);
  // "required" cannot come from a field judged alone with values; anything else is its own.
  return problem && problem.field === a.dest ? problem : undefined;
}

function errorSlot(id: string): HTMLElement {
  return h('p', { class: 'field-error', id: `${id}-error`, 'aria-live': 'polite' });
}

function describe(control: HTMLElement, id: string, hasHelp: boolean): void {
  control.setAttribute('aria-describedby', [hasHelp ? `${id}-help` : '', `${id}-error`].filter(Boolean).join(' '));
}

function fieldLabel(a: Arg, forId: string | null): HTMLElement {
  const hint = typeHint(a);
  return h(
    forId ? 'label' : 'span',
    forId ? { for: forId, class: 'field-label' } : { class: 'field-label' },
    h('span', { class: 'mono' }, label(a)),
    a.required ? h('span', { class: 'required', title: 'required' }, ' *') : null,
    hint ? h('span', { class: 'type-hint' }, ' ', hint) : null,
  );
}

function helpText(a: Arg, id: string): HTMLElement | null {
  return a.help ? h('p', { class: 'field-help', id: `${id}-help` }, a.help) : null;
}

/** A checkbox for an argument that takes no value. */
function flagControl(a: Arg, onChange: () => void): Control {
  const id = uid('arg');
  const box = h('input', { type: 'checkbox', id, name: a.dest, onChange });
  const errorEl = errorSlot(id);
  describe(box, id, !!a.help);
  const el = h(
    'div',
    { class: 'field field-check', 'data-dest': a.dest },
    h('div', { class: 'check' }, box, h('label', { for: id, class: 'mono' }, longest(a)), a.kind === 'store_false' ? h('span', { class: 'type-hint' }, ' turns it off') : null),
    helpText(a, id),
    errorEl,
  );
  return {
    dests: [a.dest],
    el,
    errorEl,
    focusEl: () => box,
    options: () => (box.checked ? [longest(a)] : []),
    positionals: () => [],
    ownProblem: () => undefined,
    touched: false,
  };
}

/** `--flag / --no-flag` (BooleanOptionalAction): default, yes or no. */
function booleanOptionalControl(a: Arg, onChange: () => void): Control {
  const id = uid('arg');
  const yes = a.option_strings.find((o) => o.startsWith('--') && !o.startsWith('--no-')) ?? a.option_strings[0];
  const no = a.option_strings.find((o) => o.startsWith('--no-')) ?? `--no-${yes.replace(/^--/, '')}`;
  const def = shownDefault(a);
  const select = h(
    'select',
    { id, name: a.dest, onChange },
    h('option', { value: '' }, def !== null ? `default: ${def}` : 'default'),
    h('option', { value: yes }, `yes (${yes})`),
    h('option', { value: no }, `no (${no})`),
  );
  const errorEl = errorSlot(id);
  describe(select, id, !!a.help);
  return {
    dests: [a.dest],
    el: h('div', { class: 'field', 'data-dest': a.dest }, fieldLabel(a, id), select, helpText(a, id), errorEl),
    errorEl,
    focusEl: () => select,
    options: () => (select.value ? [select.value] : []),
    positionals: () => [],
    ownProblem: () => undefined,
    touched: false,
  };
}

/** `-v -v -v` (action count). */
function countControl(a: Arg, onChange: () => void): Control {
  const id = uid('arg');
  const input = h('input', { type: 'number', id, name: a.dest, min: '0', step: '1', placeholder: '0', class: 'input-number', onInput: onChange });
  const errorEl = errorSlot(id);
  describe(input, id, !!a.help);
  const times = () => Math.max(0, Math.min(20, Math.floor(Number(input.value) || 0)));
  return {
    dests: [a.dest],
    el: h('div', { class: 'field', 'data-dest': a.dest }, fieldLabel(a, id), input, h('p', { class: 'field-help' }, 'How many times to give it.'), helpText(a, id), errorEl),
    errorEl,
    focusEl: () => input,
    options: () => Array.from({ length: times() }, () => a.option_strings[0]),
    positionals: () => [],
    ownProblem: () => undefined,
    touched: false,
  };
}

/** One value: text, number or select. */
function singleControl(a: Arg, onChange: () => void): Control {
  const id = uid('arg');
  const input = valueInput(a, id, onChange);
  const errorEl = errorSlot(id);
  describe(input, id, !!a.help);
  const positional = isPositional(a);
  const read = () => readValue(input, a, label(a));
  const tokens = () => {
    const { value } = read();
    if (value === '') return [];
    return positional ? [value] : optionTokens(a, value);
  };
  if (a.required) input.setAttribute('aria-required', 'true');
  return {
    dests: [a.dest],
    el: h('div', { class: 'field', 'data-dest': a.dest }, fieldLabel(a, id), input, helpText(a, id), errorEl),
    errorEl,
    focusEl: () => input,
    options: () => (positional ? [] : tokens()),
    positionals: () => (positional ? tokens() : []),
    ownProblem: () => read().problem ?? judgeAlone(a, tokens(), positional),
    touched: false,
  };
}

/** Several values: append/extend, nargs '*', '+' or a fixed N. */
function manyControl(a: Arg, onChange: () => void): Control {
  const baseId = uid('arg');
  const fixed = typeof a.nargs === 'number' && a.nargs > 1 ? a.nargs : null;
  const rows = h('div', { class: 'values' });
  const inputs: ValueInput[] = [];
  const errorEl = errorSlot(baseId);
  const positional = isPositional(a);

  const addRow = (focus: boolean) => {
    const n = inputs.length + 1;
    const id = `${baseId}-${n}`;
    const input = valueInput(a, id, onChange, n === 1);
    input.setAttribute('aria-label', `${label(a)} value ${n}`);
    describe(input, baseId, !!a.help);
    inputs.push(input);
    const row = h('div', { class: 'value-row' }, input);
    if (!fixed) {
      row.append(
        h('button', {
          type: 'button',
          class: 'button button-plain button-icon',
          'aria-label': `Remove ${label(a)} value ${n}`,
          title: 'Remove this value',
          onClick: () => {
            const i = inputs.indexOf(input);
            if (inputs.length === 1) {
              input.value = '';
            } else {
              inputs.splice(i, 1);
              row.remove();
              inputs[Math.max(0, i - 1)].focus();
            }
            onChange();
          },
        }, '×'),
      );
    }
    rows.append(row);
    if (focus) input.focus();
  };
  for (let i = 0; i < (fixed ?? 1); i++) addRow(false);

  const values = () => inputs.map((i) => readValue(i, a, label(a)).value).filter((v) => v !== '');
  const optionForm = () => {
    const vs = values();
    if (vs.length === 0) return [];
    if (a.kind === 'append') return vs.flatMap((v) => optionTokens(a, v));
    return [longest(a), ...vs];
  };
  const id = `${baseId}-1`;
  const el = h(
    'div',
    { class: 'field field-many', 'data-dest': a.dest },
    fieldLabel(a, id),
    rows,
    fixed
      ? null
      : h('button', { type: 'button', class: 'button button-small add-value', onClick: () => { addRow(true); onChange(); } }, '+ Add value'),
    helpText(a, baseId),
    errorEl,
  );
  return {
    dests: [a.dest],
    el,
    errorEl,
    focusEl: () => inputs[0],
    options: () => (positional ? [] : optionForm()),
    positionals: () => (positional ? values() : []),
    ownProblem: () => {
      for (const i of inputs) {
        const p = readValue(i, a, label(a)).problem;
        if (p) return p;
      }
      if (positional) return judgeAlone({ ...a, nargs: '*' }, values(), true);
      // Judge each value as a single one: the count is the whole form's business.
      for (const v of values()) {
        const p = judgeAlone({ ...a, nargs: null, kind: 'store' }, optionTokens(a, v), false);
        if (p) return p;
      }
      return undefined;
    },
    touched: false,
  };
}

/** A mutually exclusive group: a choice of one (or none when the group is optional). */
function groupControl(members: Arg[], required: boolean, onChange: () => void): Control {
  const name = uid('group');
  const errorEl = errorSlot(name);
  const radios: Array<{ radio: HTMLInputElement; arg: Arg | null; input: ValueInput | null }> = [];
  const rows: HTMLElement[] = [];
  const sync = () => {
    for (const r of radios) if (r.input) r.input.disabled = !r.radio.checked;
    onChange();
  };
  if (!required) {
    const id = `${name}-none`;
    const radio = h('input', { type: 'radio', name, id, value: '', checked: true, onChange: sync });
    radios.push({ radio, arg: null, input: null });
    rows.push(h('div', { class: 'check' }, radio, h('label', { for: id }, 'none of them')));
  }
  for (const a of members) {
    const id = uid('arg');
    const radio = h('input', { type: 'radio', name, id, value: a.dest, onChange: sync });
    const needsValue = !(FLAG_KINDS.has(a.kind) || a.nargs === 0 || a.kind === 'count');
    const input = needsValue ? valueInput(a, `${id}-value`, onChange) : null;
    if (input) {
      input.disabled = true;
      input.setAttribute('aria-label', `${longest(a)} value`);
    }
    radios.push({ radio, arg: a, input });
    rows.push(
      h(
        'div',
        { class: 'group-member' },
        h('div', { class: 'check' }, radio, h('label', { for: id, class: 'mono' }, longest(a))),
        input,
        a.help ? h('p', { class: 'field-help' }, a.help) : null,
      ),
    );
  }
  const chosen = () => radios.find((r) => r.radio.checked && r.arg);
  const el = h(
    'fieldset',
    { class: 'field group', 'data-dest': members.map((m) => m.dest).join(' '), 'aria-describedby': `${name}-error` },
    h('legend', null, required ? 'Choose one' : 'Choose at most one', required ? h('span', { class: 'required', title: 'required' }, ' *') : null),
    rows,
    errorEl,
  );
  return {
    dests: members.map((m) => m.dest),
    el,
    errorEl,
    focusEl: () => (chosen()?.radio ?? radios[0].radio),
    options: () => {
      const c = chosen();
      if (!c || !c.arg) return [];
      if (!c.input) return [longest(c.arg)];
      const { value } = readValue(c.input, c.arg, longest(c.arg));
      return value === '' ? [longest(c.arg)] : optionTokens(c.arg, value);
    },
    positionals: () => [],
    ownProblem: () => {
      const c = chosen();
      if (!c || !c.arg || !c.input) return undefined;
      const { value, problem } = readValue(c.input, c.arg, longest(c.arg));
      return problem ?? (value === '' ? undefined : judgeAlone(c.arg, optionTokens(c.arg, value), false));
    },
    touched: false,
  };
}

function controlFor(a: Arg, onChange: () => void): Control {
  if (a.kind === 'boolean_optional') return booleanOptionalControl(a, onChange);
  if (a.kind === 'count') return countControl(a, onChange);
  if (FLAG_KINDS.has(a.kind) || a.nargs === 0) return flagControl(a, onChange);
  if (takesMany(a)) return manyControl(a, onChange);
  return singleControl(a, onChange);
}

export class ArgsForm {
  readonly el: HTMLElement;
  private readonly controls: Control[] = [];
  private readonly common: HTMLDetailsElement | null;
  private sub: { select: HTMLSelectElement; control: Control; forms: Map<string, ArgsForm>; box: HTMLElement } | null = null;

  constructor(
    private readonly schema: Parser,
    private readonly onChange: () => void,
  ) {
    // A control marks itself touched through this holder, filled in once it exists.
    const changed = (holder: { c?: Control }) => () => {
      if (holder.c) holder.c.touched = true;
      onChange();
    };
    const grouped = new Set(schema.groups.flatMap((g) => g.dests));
    const visible = schema.arguments.filter((a) => !SKIPPED_KINDS.has(a.kind) && !a.hidden);
    const own: HTMLElement[] = [];
    const commonEls: HTMLElement[] = [];
    const place = (c: Control, common: boolean) => {
      this.controls.push(c);
      (common ? commonEls : own).push(c.el);
    };
    for (const a of [...visible.filter(isPositional), ...visible.filter((x) => !isPositional(x))]) {
      if (grouped.has(a.dest)) continue;
      const holder: { c?: Control } = {};
      holder.c = controlFor(a, changed(holder));
      place(holder.c, !!a.common);
    }
    for (const g of schema.groups) {
      const members = g.dests.map((d) => visible.find((a) => a.dest === d)).filter((a): a is Arg => !!a);
      if (members.length === 0) continue;
      const holder: { c?: Control } = {};
      holder.c = groupControl(members, g.required, changed(holder));
      place(holder.c, members.every((m) => m.common));
    }

    let subEl: HTMLElement | null = null;
    if (schema.subcommands) {
      const sc = schema.subcommands;
      const id = uid('sub');
      const names = Object.keys(sc.choices);
      const select = h(
        'select',
        { id, name: sc.dest },
        h('option', { value: '' }, sc.required ? '— choose —' : '— none —'),
        names.map((n) => h('option', { value: n }, sc.choices_help?.[n] ? `${n} — ${sc.choices_help[n]}` : n)),
      );
      const box = h('div', { class: 'subform' });
      const errorEl = errorSlot(id);
      describe(select, id, false);
      const control: Control = {
        dests: [sc.dest],
        el: h(
          'div',
          { class: 'field', 'data-dest': sc.dest },
          h('label', { for: id, class: 'field-label' }, 'Subcommand', sc.required ? h('span', { class: 'required', title: 'required' }, ' *') : null),
          select,
          sc.help ? h('p', { class: 'field-help' }, sc.help) : null,
          errorEl,
        ),
        errorEl,
        focusEl: () => select,
        options: () => [],
        positionals: () => [],
        ownProblem: () => undefined,
        touched: false,
      };
      this.sub = { select, control, forms: new Map(), box };
      select.addEventListener('change', () => {
        control.touched = true;
        this.showSubform();
        onChange();
      });
      this.controls.push(control);
      subEl = h('div', { class: 'subcommand' }, control.el, box);
    }

    this.common = commonEls.length
      ? h('details', { class: 'common-options' }, h('summary', null, 'Common options', h('span', { class: 'muted small' }, ` (${commonEls.length}: verbosity, settings, traceback…)`)), h('div', { class: 'fields' }, commonEls))
      : null;
    const nothing = own.length === 0 && !subEl ? h('p', { class: 'muted' }, 'This command takes no arguments of its own.') : null;
    this.el = h('div', { class: 'args-form' }, nothing, own.length ? h('div', { class: 'fields' }, own) : null, subEl, this.common);
  }

  private activeSub(): { name: string; form: ArgsForm } | null {
    if (!this.sub) return null;
    const name = this.sub.select.value;
    if (!name) return null;
    let form = this.sub.forms.get(name);
    if (!form) {
      form = new ArgsForm(this.schema.subcommands!.choices[name], this.onChange);
      this.sub.forms.set(name, form);
    }
    return { name, form };
  }

  private showSubform(): void {
    const active = this.activeSub();
    this.sub!.box.replaceChildren(...(active ? [h('h4', { class: 'subform-title' }, 'Arguments of ', h('span', { class: 'mono' }, active.name)), active.form.el] : []));
  }

  /** The argv the form stands for, in an order argparse reads back the same. */
  argv(): string[] {
    const options = this.controls.flatMap((c) => c.options());
    const positionals = this.controls.flatMap((c) => c.positionals());
    const active = this.activeSub();
    const tail = active ? [active.name, ...active.form.argv()] : [];
    if (positionals.some(looksLikeOption)) return [...options, '--', ...positionals, ...tail];
    return [...positionals, ...options, ...tail];
  }

  private all(): Control[] {
    const active = this.activeSub();
    return active ? [...this.controls, ...active.form.all()] : this.controls;
  }

  /**
   * Shows problems next to their fields: each field's own (always), and the whole argv's
   * `problem` when its field was touched or `reveal` is set (after a Run). Returns the problem
   * that has no field on this form, for the caller to show, and whether anything is wrong.
   */
  showProblems(problem: ArgvProblem | undefined, reveal: boolean): { unplaced: ArgvProblem | undefined; invalid: boolean; first: HTMLElement | null } {
    let invalid = false;
    let first: HTMLElement | null = null;
    let placed = false;
    for (const c of this.all()) {
      const own = c.ownProblem();
      let message = own?.message ?? null;
      if (own) invalid = true;
      if (problem && problem.field && c.dests.includes(problem.field) && !placed) {
        placed = true;
        if (!own && (reveal || c.touched)) message = problem.message;
      }
      c.errorEl.textContent = message ?? '';
      const target = c.focusEl();
      if (message) {
        target.setAttribute('aria-invalid', 'true');
        first ??= target;
        if (this.common && this.common.contains(c.el)) this.common.open = true;
      } else {
        target.removeAttribute('aria-invalid');
      }
    }
    if (problem) invalid = true;
    return { unplaced: problem && !placed ? problem : undefined, invalid, first };
  }
}

/** A preview of what runs: `manage.py migrate --plan`. */
export function commandPreview(): { el: HTMLElement; set: (command: string, words: string) => void } {
  const code = h('code', { class: 'mono' });
  const el = h('div', { class: 'preview', 'aria-live': 'off' }, h('span', { class: 'muted small' }, 'Will run '), code);
  return { el, set: (command, words) => (code.textContent = `manage.py ${command}${words ? ` ${words}` : ''}`) };
}
