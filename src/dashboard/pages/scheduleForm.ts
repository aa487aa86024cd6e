/**
 * Creating or editing a schedule, with a live preview of the next runs in the schedule's zone,
 * in UTC and in the viewer's own, the daylight-saving days marked with what happens. A wrong
 * cron field or zone shows next to its field before anything is saved.
 */
import type { CommandView } from '../../shared/api.js';
import type { ScheduleView } from '../../shared/schedulesApi.js';
import { splitShellWords } from '../../domain/shellWords.js';
import { api, ApiError } from '../api.js';
import { h, replace } from '../dom.js';
import { href, navigate, type Route } from '../router.js';
import { errorMessage, errorNotice, field, loading, notice, pageTitle, setFieldError } from '../ui.js';
import { schedulePath, schedulesApi, schedulesPath } from './scheduleApi.js';
import { runsTable, viewerZone } from './scheduleParts.js';
import { readOnlyCheckbox } from '../readOnly.js';
import { may } from '../session.js';

const PREVIEW_DELAY_MS = 250;

function zoneList(): HTMLDataListElement {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : ['UTC'];
  return h('datalist', { id: 'time-zones' }, ['UTC', ...zones.filter((z) => z !== 'UTC')].map((z) => h('option', { value: z })));
}

export async function scheduleFormPage(main: HTMLElement, route: Route): Promise<void> {
  const editing = route.params.id;
  replace(main, pageTitle(editing ? 'Edit schedule' : 'New schedule'), loading());
  const existing: ScheduleView | undefined = editing ? await schedulesApi.get(editing, route.signal) : undefined;
  // Schedules are made in the projects one administers.
  const projects = (await api.projects(route.signal)).items.filter((p) => p.name === existing?.project || may(p.name, 'schedules.manage'));
  if (projects.length === 0) {
    replace(main, pageTitle('New schedule'), notice('info', 'Create a project first (Settings), or ask to be made an admin of one.'));
    return;
  }

  const project = h('select', { name: 'project', 'data-testid': 'schedule-project', disabled: Boolean(existing) }, projects.map((p) => h('option', { value: p.name }, p.name)));
  project.value = existing?.project ?? route.query.get('project') ?? projects[0].name;
  const command = h('select', { name: 'command', 'data-testid': 'schedule-command' });
  const args = h('input', { type: 'text', name: 'args', class: 'mono', spellcheck: 'false', autocomplete: 'off', value: existing?.args ?? '', 'data-testid': 'schedule-args' });
  const cron = h('input', { type: 'text', name: 'cron', class: 'mono', spellcheck: 'false', autocomplete: 'off', required: true, value: existing?.cron ?? '0 3 * * *', 'data-testid': 'schedule-cron' });
  const timezone = h('input', { type: 'text', name: 'timezone', list: 'time-zones', spellcheck: 'false', autocomplete: 'off', value: existing?.timezone ?? 'UTC', 'data-testid': 'schedule-timezone' });
  const name = h('input', { type: 'text', name: 'name', value: existing?.name ?? '', 'data-testid': 'schedule-name' });
  const overlap = h('select', { name: 'overlap' }, h('option', { value: 'skip' }, 'skip it (recorded as skipped)'), h('option', { value: 'queue' }, 'queue it behind the running one'));
  overlap.value = existing?.overlap ?? 'skip';
  const misfire = h('select', { name: 'misfire' }, h('option', { value: 'run_once' }, 'run once (the latest missed run)'), h('option', { value: 'skip' }, 'skip them (recorded as missed)'));
  misfire.value = existing?.misfire ?? 'run_once';
  const number = (n: string, value: number | null | undefined, placeholder: string) =>
    h('input', { type: 'number', name: n, min: '1', step: '1', inputmode: 'numeric', value: value === null || value === undefined ? '' : String(value), placeholder });
  const timeout = number('timeout', existing?.timeout, 'server default');
  const startTimeout = number('start_timeout', existing?.start_timeout, '600');
  const healthEvery = number('health_every', existing?.health_every, 'no health check');
  const readOnly = readOnlyCheckbox(null, existing?.read_only ?? false);

  const fCommand = field('Command', command, { required: true });
  const fArgs = field('Arguments', args, { help: 'As you would type them after the command; checked against its arguments when saved.' });
  const fCron = field('Cron expression', cron, { required: true, help: '5 fields: minute hour day-of-month month day-of-week, or @hourly @daily @weekly @monthly @yearly.' });
  const fZone = field('Time zone', timezone, { help: `IANA name, e.g. Europe/Amsterdam. Yours is ${viewerZone()}.` });
  const formError = h('div', { 'aria-live': 'polite' });
  const preview = h('div', { 'data-testid': 'schedule-preview', 'aria-live': 'polite' });

  const fillCommands = async () => {
    let items: CommandView[] = [];
    try {
      items = (await api.commands(project.value, route.signal)).items.sort((a, b) => a.name.localeCompare(b.name));
    } catch (err) {
      replace(formError, errorNotice(err));
    }
    replace(command, items.map((c) => h('option', { value: c.name, disabled: Boolean(c.refused), title: c.refused ?? '' }, c.refused ? `${c.name} (refused by the runner)` : c.name)));
    if (existing) command.value = existing.command;
    if (items.length === 0) setFieldError(command, fCommand.error, 'No runner has reported commands for this project yet.');
    else setFieldError(command, fCommand.error, null);
  };
  project.addEventListener('change', () => void fillCommands());
  await fillCommands();

  let timer: number | undefined;
  let asked = 0;
  const refreshPreview = () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(async () => {
      const mine = ++asked;
      try {
        const p = await schedulesApi.preview(cron.value.trim(), timezone.value.trim() || 'UTC', 8, route.signal);
        if (mine !== asked) return;
        setFieldError(cron, fCron.error, null);
        setFieldError(timezone, fZone.error, null);
        replace(preview, h('h2', null, 'Next runs'), runsTable(p.runs, p.timezone));
      } catch (err) {
        if (mine !== asked || route.signal.aborted) return;
        const fieldName = err instanceof ApiError ? err.details.field : undefined;
        if (fieldName === 'timezone') setFieldError(timezone, fZone.error, errorMessage(err));
        else setFieldError(cron, fCron.error, errorMessage(err));
        replace(preview, h('h2', null, 'Next runs'), h('p', { class: 'muted' }, 'Fix the expression to see when it runs.'));
      }
    }, PREVIEW_DELAY_MS);
  };
  cron.addEventListener('input', refreshPreview);
  timezone.addEventListener('input', refreshPreview);
  refreshPreview();

  const save = h('button', { type: 'submit', class: 'button button-primary', 'data-testid': 'schedule-save' }, existing ? 'Save' : 'Create schedule');
  const form = h(
    'form',
    {
      class: 'schedule-form',
      novalidate: true,
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        replace(formError);
        let argv: string[];
        try {
          argv = splitShellWords(args.value);
          setFieldError(args, fArgs.error, null);
        } catch (err) {
          setFieldError(args, fArgs.error, errorMessage(err));
          return;
        }
        const num = (el: HTMLInputElement) => (el.value.trim() === '' ? null : Number(el.value));
        const body: Record<string, unknown> = {
          command: command.value,
          argv,
          cron: cron.value.trim(),
          timezone: timezone.value.trim() || 'UTC',
          name: name.value.trim() || null,
          overlap: overlap.value,
          misfire: misfire.value,
          timeout: num(timeout),
          health_every: num(healthEvery),
          read_only: readOnly.checked(),
          ...(num(startTimeout) !== null ? { start_timeout: num(startTimeout) } : {}),
        };
        save.disabled = true;
        try {
          const s = existing ? await schedulesApi.update(existing.id, body) : await schedulesApi.create({ project: project.value, ...body });
          navigate(href(schedulePath(s.id)));
        } catch (err) {
          const f = err instanceof ApiError ? err.details.field : undefined;
          if (f === 'cron') setFieldError(cron, fCron.error, errorMessage(err));
          else if (f === 'timezone') setFieldError(timezone, fZone.error, errorMessage(err));
          else if (err instanceof ApiError && (err.code === 'DC_BAD_ARGS' || f === 'argv')) setFieldError(args, fArgs.error, errorMessage(err));
          else replace(formError, errorNotice(err));
        } finally {
          save.disabled = false;
        }
      },
    },
    h(
      'div',
      null,
      field('Project', project).el,
      fCommand.el,
      fArgs.el,
      fCron.el,
      fZone.el,
      field('Name', name, { help: 'Optional; shown instead of the command line.' }).el,
      readOnly.el,
      h(
        'details',
        { class: 'advanced', open: Boolean(existing) },
        h('summary', null, 'Policies and limits'),
        field('When the previous run is still going', overlap).el,
        field('Runs missed while the servers were down', misfire, { help: 'Within the catch-up window (1 hour); older ones are recorded as missed.' }).el,
        field('Timeout (seconds)', timeout).el,
        field('Start deadline (seconds)', startTimeout, { help: 'No runner started it by then: the run is recorded as missed.' }).el,
        field('Expect a success every (minutes)', healthEvery, { help: 'A health check: when no run succeeded for this long, the team is notified.' }).el,
      ),
      formError,
      h('div', { class: 'form-actions' }, save, h('a', { href: href(existing ? schedulePath(existing.id) : schedulesPath), class: 'button button-plain' }, 'Cancel')),
    ),
    h('div', null, preview),
  );
  replace(main, h('p', { class: 'crumbs muted small' }, h('a', { href: href(schedulesPath) }, 'Schedules')), pageTitle(existing ? `Edit ${existing.name ?? existing.command}` : 'New schedule'), zoneList(), form);
}
