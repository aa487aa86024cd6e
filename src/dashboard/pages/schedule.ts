/**
 * One schedule: what it runs and when, its next runs (daylight-saving days marked), and every
 * occurrence: its execution, or why none started. Admins edit, pause, resume, run now, delete.
 */
import type { OccurrenceView, ScheduleView } from '../../shared/schedulesApi.js';
import { h, replace } from '../dom.js';
import { duration, timeEl } from '../format.js';
import { href, navigate, projectPath, type Route } from '../router.js';
import { may } from '../session.js';
import { button, dataTable, errorNotice, every, loading, pageTitle } from '../ui.js';
import { schedulePath, schedulesApi, schedulesPath } from './scheduleApi.js';
import { executionLink, resultBadge, resultStrip, runsTable } from './scheduleParts.js';
import { fromCodeBadge, scheduleTitle } from './schedules.js';
import { readOnlyBadge } from '../readOnly.js';

const REFRESH_MS = 5000;

function occurrenceRow(o: OccurrenceView): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-outcome': o.outcome },
    h('td', null, timeEl(o.due_at), o.count > 1 ? h('div', { class: 'muted small' }, `… to `, timeEl(o.last_due_at), ` (${o.count} occurrences)`) : null),
    h('td', null, o.trigger === 'cron' ? '' : h('span', { class: 'badge' }, o.trigger === 'manual' ? 'run now' : 'catch-up')),
    h('td', null, resultBadge(o), o.exit_code !== null ? h('span', { class: 'muted small' }, ` exit ${o.exit_code}`) : null),
    h('td', { class: 'small' }, o.late_ms === null ? '' : duration(o.late_ms)),
    h('td', null, executionLink(o)),
    h('td', { class: 'small' }, o.reason ?? ''),
  );
}

function facts(s: ScheduleView): HTMLElement {
  const row = (k: string, ...v: Array<Node | string>) => [h('dt', null, k), h('dd', null, ...v)];
  return h(
    'dl',
    { class: 'facts' },
    row('Project', h('a', { href: href(projectPath(s.project)) }, s.project)),
    row('Runs', h('span', { class: 'mono' }, `${s.command}${s.args ? ' ' + s.args : ''}`)),
    row('When', h('span', { class: 'mono' }, s.cron), ` in ${s.timezone}`),
    row('Next run', s.paused ? `paused${s.paused_reason ? `: ${s.paused_reason}` : ''}` : timeEl(s.next_run_at)),
    row('Defined', s.from_code ? 'from code: DJANGOCOMMAND_SCHEDULES in the Django settings (change it there and deploy; pause, resume and run now work here)' : 'here (dashboard, CLI or API)'),
    row('Overlap', s.overlap === 'skip' ? 'skip while the previous run is active' : 'queue behind the previous run (one waits at most)'),
    row('Missed while down', `${s.misfire === 'run_once' ? 'run once' : 'skip'} (catch-up window ${duration(s.catch_up_window * 1000)})`),
    row('Start deadline', duration(s.start_timeout * 1000)),
    row('Health check', s.health_every ? `a success expected every ${s.health_every} min${s.health_deadline ? '; next by ' : ''}` : 'none', s.health_deadline ? timeEl(s.health_deadline) : ''),
    row('Last success', timeEl(s.last_success_at)),
    row('Created', timeEl(s.created_at), ` by ${s.created_by}`),
  );
}

export async function schedulePage(main: HTMLElement, route: Route): Promise<void> {
  const id = route.params.id;
  replace(main, loading());
  const problems = h('div', { 'aria-live': 'polite' });
  const render = async () => {
    const [s, occ] = await Promise.all([schedulesApi.get(id, route.signal), schedulesApi.occurrences(id, route.signal)]);
    const admin = may(s.project, 'schedules.manage');
    const act = (fn: () => Promise<unknown>, after?: () => void) => async () => {
      try {
        await fn();
        if (after) after();
        else await render();
      } catch (err) {
        replace(problems, errorNotice(err));
      }
    };
    replace(
      main,
      h('p', { class: 'crumbs muted small' }, h('a', { href: href(schedulesPath) }, 'Schedules'), ' / ', s.project),
      pageTitle(
        scheduleTitle(s),
        s.paused ? h('span', { class: 'badge badge-off' }, 'paused') : null,
        s.from_code ? fromCodeBadge() : null,
        s.read_only ? readOnlyBadge() : null,
        admin && !s.from_code ? h('a', { href: href(`${schedulePath(s.id)}/edit`), class: 'button' }, 'Edit') : null,
        admin ? (s.paused ? button('Resume', act(() => schedulesApi.resume(s.id))) : button('Pause', act(() => schedulesApi.pause(s.id)))) : null,
        may(s.project, 'run') ? button('Run now', act(() => schedulesApi.runNow(s.id)), { testid: 'run-now' }) : null,
        admin && !s.from_code
          ? button(
              'Delete',
              act(
                async () => {
                  if (confirm(`Delete the schedule "${scheduleTitle(s)}"? Its runs stay in the history.`)) await schedulesApi.remove(s.id);
                  else throw new Error('Not deleted.');
                },
                () => navigate(href(schedulesPath)),
              ),
              { kind: 'danger' },
            )
          : null,
      ),
      problems,
      h('section', { class: 'card' }, facts(s), h('p', null, 'Last results: ', resultStrip(occ.items.slice(0, 20)))),
      h('section', { class: 'card' }, h('h2', null, 'Next runs'), runsTable(s.next_runs ?? [], s.timezone)),
      h(
        'section',
        null,
        h('h2', null, 'Occurrences'),
        occ.items.length === 0
          ? h('p', { class: 'muted' }, 'None yet.')
          : h('div', { class: 'table-wrap' }, dataTable({ 'aria-label': 'Occurrences', 'data-testid': 'occurrences' }, ['Due', '', 'Result', 'Late by', 'Execution', 'Why'], occ.items.map(occurrenceRow))),
      ),
    );
  };
  try {
    await render();
  } catch (err) {
    replace(main, errorNotice(err));
    return;
  }
  every(REFRESH_MS, route.signal, async () => {
    if (main.contains(document.activeElement) && document.activeElement !== document.body) return;
    await render().catch((err) => replace(problems, errorNotice(err)));
  });
}
