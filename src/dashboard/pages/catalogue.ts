/**
 * A project's command catalogue: search, help, and a form made from the chosen command's
 * argparse definition (or free-text arguments), checked before anything runs. Run creates the
 * execution and opens its live view.
 */
import type { CommandView } from '../../shared/api.js';
import { validateArgv, type ArgvProblem } from '../../domain/argvValidation.js';
import { joinShellWords, splitShellWords } from '../../domain/shellWords.js';
import { api, ApiError } from '../api.js';
import { ArgsForm, commandPreview, isParser } from '../argsForm.js';
import { h, replace, uid } from '../dom.js';
import { commandPath, executionPath, href, navigate, projectPath, replaceQuery, type Route } from '../router.js';
import { errorMessage, errorNotice, field, loading, notice, pageTitle, setFieldError } from '../ui.js';
import { may, roleIn } from '../session.js';
import { readOnlyCheckbox } from '../readOnly.js';
import { commandSettingsPanel } from '../commandSettingsPanel.js';

const CACHE_MS = 30_000;
const cache = new Map<string, { at: number; items: CommandView[] }>();

async function commandsOf(project: string, signal: AbortSignal): Promise<CommandView[]> {
  const hit = cache.get(project);
  if (hit && Date.now() - hit.at < CACHE_MS) return hit.items;
  const { items } = await api.commands(project, signal);
  items.sort((a, b) => a.name.localeCompare(b.name));
  cache.set(project, { at: Date.now(), items });
  return items;
}

/** The first sentence a person needs: the parser's description, else the help's first paragraph. */
function summary(c: CommandView): string {
  if (isParser(c.schema) && c.schema.description) return c.schema.description;
  const paragraphs = c.help_text.split(/\n\s*\n/).map((p) => p.trim());
  const text = paragraphs.find((p) => p && !p.startsWith('usage:') && !/^(positional arguments|options|optional arguments):/.test(p));
  return text ? text.replace(/\s+/g, ' ') : '';
}

/** The search lives in the URL (`?q=`): links to commands keep it, a fresh visit starts empty. */
function commandList(project: string, items: CommandView[], selected: string | undefined, initial: string): HTMLElement {
  const search = h('input', {
    type: 'search',
    placeholder: 'Search commands…',
    'aria-label': 'Search commands',
    class: 'search',
    value: initial,
    autocomplete: 'off',
    spellcheck: 'false',
    'data-testid': 'command-search',
  });
  const count = h('p', { class: 'muted small', 'aria-live': 'polite' });
  const rows = items.map((c) => {
    const link = h(
      'a',
      { href: href(commandPath(project, c.name)), class: 'command-link', 'aria-current': c.name === selected ? 'page' : null, 'data-command': c.name },
      h('span', { class: 'command-name mono' }, c.name),
      c.refused ? h('span', { class: 'badge badge-refused', title: c.refused }, 'refused') : null,
      h('span', { class: 'command-app muted small' }, c.app_label),
      h('span', { class: 'command-summary muted small' }, summary(c)),
    );
    return { c, li: h('li', null, link), link, text: `${c.name} ${c.app_label} ${summary(c)}`.toLowerCase() };
  });
  const list = h('ul', { class: 'command-list' }, rows.map((r) => r.li));
  const filter = (typed: boolean) => {
    const q = search.value.trim().toLowerCase();
    for (const r of rows) r.link.href = href(commandPath(project, r.c.name), { q: search.value.trim() });
    if (typed) replaceQuery(selected ? commandPath(project, selected) : projectPath(project), { q: search.value.trim() });
    let shown = 0;
    for (const r of rows) {
      // Names first: a search for "migrate" should not be buried under help texts that mention it.
      const hit = !q || r.text.includes(q);
      r.li.hidden = !hit;
      if (hit) shown++;
    }
    rows.sort((a, b) => rank(a.c.name, q) - rank(b.c.name, q) || a.c.name.localeCompare(b.c.name));
    for (const r of rows) list.append(r.li);
    count.textContent = q ? `${shown} of ${rows.length} commands` : `${rows.length} commands`;
  };
  const visible = () => rows.filter((r) => !r.li.hidden);
  search.addEventListener('input', () => filter(true));
  search.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      const first = visible()[0];
      if (first) navigate(href(commandPath(project, first.c.name), { q: search.value.trim() }));
    } else if (e.key === 'ArrowDown') {
      e.preventDefault();
      visible()[0]?.link.focus();
    }
  });
  list.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const links = visible().map((r) => r.link);
    const i = links.indexOf(document.activeElement as HTMLAnchorElement);
    if (i < 0) return;
    e.preventDefault();
    if (e.key === 'ArrowUp' && i === 0) search.focus();
    else links[Math.max(0, Math.min(links.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))].focus();
  });
  filter(false);
  const aside = h('aside', { class: 'catalogue-list', 'aria-label': 'Commands' }, search, count, list);
  if (!selected) queueMicrotask(() => search.focus());
  // Keep the chosen command in sight in a long list.
  requestAnimationFrame(() => {
    const current = list.querySelector<HTMLElement>('[aria-current="page"]');
    if (current && (current.offsetTop < list.scrollTop || current.offsetTop + current.offsetHeight > list.scrollTop + list.clientHeight)) {
      list.scrollTop = current.offsetTop - list.offsetTop - list.clientHeight / 3;
    }
  });
  return aside;
}

function runForm(project: string, c: CommandView, prefill: string | null, readOnlyAsked = false): HTMLElement {
  const schema = isParser(c.schema) ? c.schema : null;
  const preview = commandPreview();
  const formError = h('div', { class: 'form-error', 'aria-live': 'assertive' });
  let mode: 'form' | 'text' = schema && prefill === null ? 'form' : 'text';
  let submitted = false;

  const textInput = h('input', { type: 'text', class: 'mono', name: 'args', value: prefill ?? '', placeholder: 'arguments, as after manage.py ' + c.name, autocomplete: 'off', spellcheck: 'false', autocapitalize: 'none', 'data-testid': 'free-args' });
  const text = field('Arguments', textInput, { help: 'Split like a POSIX shell: quote values with spaces.' });
  const timeout = h('input', { type: 'number', min: '1', max: '604800', step: '1', placeholder: 'server default', name: 'timeout', class: 'input-number' });
  const timeoutField = field('Timeout (seconds)', timeout);
  const readOnly = readOnlyCheckbox(c, readOnlyAsked);

  const update = () => {
    let problem: ArgvProblem | undefined;
    let words = '';
    let invalid = false;
    if (mode === 'form' && argsForm) {
      const argv = argsForm.argv();
      words = joinShellWords(argv);
      problem = validateArgv(schema, argv);
      const shown = argsForm.showProblems(problem, submitted);
      invalid = shown.invalid;
      formError.replaceChildren(shown.unplaced && submitted ? notice('error', shown.unplaced.message) : '');
      setFieldError(textInput, text.error, null);
    } else {
      words = textInput.value.trim();
      try {
        problem = validateArgv(schema, splitShellWords(textInput.value));
      } catch (err) {
        problem = { field: null, message: errorMessage(err) };
      }
      invalid = !!problem;
      setFieldError(textInput, text.error, problem ? problem.message : null);
      formError.replaceChildren();
    }
    preview.set(c.name, words);
    return { invalid };
  };

  const argsForm = schema ? new ArgsForm(schema, () => update()) : null;
  const formBox = h('div', { class: 'mode-form' }, argsForm?.el);
  const textBox = h('div', { class: 'mode-text' }, text.el, schema ? null : h('p', { class: 'muted small' }, 'The runner did not describe this command\u2019s arguments: type them as you would after ', h('code', null, `manage.py ${c.name}`), '.'));
  textInput.addEventListener('input', () => update());

  const tabs = schema
    ? h(
        'div',
        { class: 'segmented', role: 'radiogroup', 'aria-label': 'How to give arguments' },
        ...(['form', 'text'] as const).map((m) => {
          const id = uid('mode');
          const radio = h('input', { type: 'radio', name: 'args-mode', id, value: m, checked: mode === m });
          radio.addEventListener('change', () => {
            if (!radio.checked) return;
            if (m === 'text' && argsForm && !textInput.value.trim()) textInput.value = joinShellWords(argsForm.argv());
            mode = m;
            paintMode();
            update();
          });
          return h('span', null, radio, h('label', { for: id }, m === 'form' ? 'Form' : 'Free text'));
        }),
      )
    : null;
  const paintMode = () => {
    formBox.hidden = mode !== 'form';
    textBox.hidden = mode !== 'text';
  };
  paintMode();

  const run = h('button', { type: 'submit', class: 'button button-primary button-run', disabled: !!c.refused, 'data-testid': 'run' }, 'Run ', h('span', { class: 'mono' }, c.name));
  const form = h(
    'form',
    {
      class: 'run-form',
      novalidate: true,
      'aria-label': `Run ${c.name}`,
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        if (c.refused) return;
        submitted = true;
        const { invalid } = update();
        if (invalid) {
          const first = form.querySelector<HTMLElement>('[aria-invalid="true"]');
          first?.focus();
          if (!first) formError.querySelector<HTMLElement>('.notice')?.focus();
          return;
        }
        const t = timeout.value ? Number(timeout.value) : undefined;
        if (t !== undefined && (!Number.isInteger(t) || t < 1 || t > 604_800)) {
          setFieldError(timeout, timeoutField.error, 'A whole number of seconds from 1 to 604800.');
          timeout.focus();
          return;
        }
        setFieldError(timeout, timeoutField.error, null);
        run.disabled = true;
        run.textContent = 'Starting…';
        try {
          const args = mode === 'form' && argsForm ? { argv: argsForm.argv() } : { args: textInput.value };
          const body = { command: c.name, ...args, timeout: t, ...(readOnly.checked() ? { read_only: true } : {}) };
          const created = await api.createExecution(project, body);
          navigate(executionPath(created.id));
        } catch (err) {
          run.disabled = false;
          replace(run, 'Run ', h('span', { class: 'mono' }, c.name));
          const fieldName = err instanceof ApiError ? (err.details.field as string | undefined) : undefined;
          if (err instanceof ApiError && err.code === 'DC_BAD_ARGS') {
            if (mode === 'form' && argsForm) {
              const shown = argsForm.showProblems({ field: fieldName ?? null, message: err.message }, true);
              if (shown.unplaced) formError.replaceChildren(errorNotice(err));
              shown.first?.focus();
            } else {
              setFieldError(textInput, text.error, err.message);
              textInput.focus();
            }
            return;
          }
          formError.replaceChildren(errorNotice(err));
          if (err instanceof ApiError && err.code === 'DC_CONCURRENCY_LIMIT') {
            formError.append(h('p', null, h('a', { href: href('/history', { project, command: c.name, status: 'queued,awaiting_approval,dispatched,running' }) }, 'See the ones running now →')));
          }
        }
      },
    },
    tabs,
    formBox,
    textBox,
    readOnly.el,
    h('details', { class: 'advanced' }, h('summary', null, 'Timeout'), timeoutField.el),
    // Always in reach, however long the form: what will run, and the button.
    h('div', { class: 'run-bar' }, preview.el, formError, h('div', { class: 'form-actions' }, run)),
  );
  update();
  return form;
}

function commandDetail(project: string, c: CommandView, prefill: string | null, q: string, readOnlyAsked = false, signal?: AbortSignal): HTMLElement {
  const desc = summary(c);
  return h(
    'section',
    { class: 'command-detail', 'aria-labelledby': 'page-title' },
    h('p', { class: 'back-link' }, h('a', { href: href(projectPath(project), { q }) }, '← All commands')),
    pageTitle(c.name),
    h('p', { class: 'muted small' }, `${c.app_label} · at most ${c.max_concurrency} running at a time in ${project}${c.read_only ? ' · read-only by default' : ''}`),
    desc ? h('p', { class: 'command-description' }, desc) : null,
    c.refused
      ? notice('warning', h('strong', null, 'The runners\u2019 policy refuses this command. '), c.refused)
      : null,
    c.refused
      ? null
      : may(project, 'run')
        ? runForm(project, c, prefill, readOnlyAsked)
        : notice('info', h('span', { 'data-testid': 'no-run' }, `Your role in ${project} is ${roleIn(project) ?? 'none'}: you see its commands and past runs; an operator or admin runs them.`)),
    h('details', { class: 'help-text' }, h('summary', null, 'Full help (', h('code', null, `manage.py ${c.name} --help`), ')'), h('pre', { class: 'mono' }, c.help_text || 'No help text.')),
    h('p', null, h('a', { href: href('/history', { project, command: c.name }) }, `Past runs of ${c.name} →`)),
    // Admins get the form, the others a read-only list (commandSettingsPanel.ts decides with may()).
    commandSettingsPanel(project, c.name, signal),
  );
}

export async function cataloguePage(main: HTMLElement, route: Route): Promise<void> {
  const { project, command } = route.params;
  replace(main, loading());
  const items = await commandsOf(project, route.signal);
  const selected = command ? items.find((c) => c.name === command) : undefined;
  const detail = selected
    ? commandDetail(project, selected, route.query.get('args'), route.query.get('q') ?? '', route.query.get('read_only') === '1', route.signal)
    : command
      ? h('section', null, pageTitle(command), notice('error', `Project ${project} has no command "${command}". `, h('a', { href: href(projectPath(project)) }, 'See all its commands.')))
      : h(
          'section',
          { class: 'command-detail command-none' },
          pageTitle(`Commands of ${project}`),
          h('p', { class: 'muted' }, items.length ? 'Pick a command on the left, or type its name in the search box and press Enter.' : 'No runner has reported this project\u2019s commands yet: start a runner next to manage.py.'),
          h('p', null, h('a', { href: href(`${projectPath(project)}/members`) }, `Members of ${project} →`)),
        );
  replace(
    main,
    h('p', { class: 'crumbs muted small' }, h('a', { href: '#/' }, 'Projects'), ' / ', h('a', { href: href(projectPath(project)) }, project)),
    h('div', { class: `catalogue ${selected || command ? 'has-selection' : ''}` }, commandList(project, items, command, route.query.get('q') ?? ''), detail),
  );
  if (selected) {
    main.querySelector<HTMLElement>('#page-title')?.focus({ preventScroll: true });
  }
}

function rank(name: string, q: string): number {
  if (!q) return 0;
  if (name === q) return 0;
  if (name.startsWith(q)) return 1;
  if (name.includes(q)) return 2;
  return 3;
}
