/**
 * Schedules across projects: a "next 24 hours" timeline, then per project its schedules with the
 * next run, the last result and a strip of the last 20 results. Admins pause, resume and run now
 * from here, and create new ones.
 */
import type { ScheduleView, TimelineView } from '../../shared/schedulesApi.js';
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { timeEl } from '../format.js';
import { href, projectPath, type Route } from '../router.js';
import { may, mayInSome } from '../session.js';
import { button, dataTable, empty, errorNotice, every, loading, pageTitle } from '../ui.js';
import { schedulePath, schedulesApi } from './scheduleApi.js';
import { resultBadge, resultStrip } from './scheduleParts.js';
import { readOnlyBadge } from '../readOnly.js';

const REFRESH_MS = 10_000;

/** A code schedule (DJANGOCOMMAND_SCHEDULES): read-only here, changed by a deploy. */
export function fromCodeBadge(): HTMLElement {
  return h('span', { class: 'badge', 'data-testid': 'from-code', title: 'Defined in DJANGOCOMMAND_SCHEDULES: change it in the Django settings and deploy.' }, 'from code');
}

export function scheduleTitle(s: Pick<ScheduleView, 'name' | 'command' | 'args'>): string {
  return s.name ?? `${s.command}${s.args ? ' ' + s.args : ''}`;
}

/** One row per schedule, a mark per run over the next 24 hours, in the viewer's time. */
export function timeline(tl: TimelineView): HTMLElement {
  const from = Date.parse(tl.from);
  const to = Date.parse(tl.to);
  const pct = (iso: string) => `${(((Date.parse(iso) - from) / (to - from)) * 100).toFixed(3)}%`;
  const rows = new Map<string, TimelineView['items']>();
  for (const i of tl.items) rows.set(i.schedule_id, [...(rows.get(i.schedule_id) ?? []), i]);
  const ticks: HTMLElement[] = [];
  const firstTick = Math.ceil(from / 10_800_000) * 10_800_000;
  for (let t = firstTick; t < to; t += 10_800_000) {
    ticks.push(h('span', { class: 'timeline-tick', style: `left: ${pct(new Date(t).toISOString())}` }, new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })));
  }
  const list = h(
    'ol',
    { class: 'small' },
    tl.items.slice(0, 200).map((i) => h('li', null, timeEl(i.at), ` — ${i.project}: ${i.schedule} (${i.local} ${i.timezone})${i.dst ? ` ⚠ ${i.dst}` : ''}`)),
  );
  return h(
    'section',
    { class: 'timeline', 'aria-labelledby': 'timeline-title', 'data-testid': 'timeline' },
    h('h2', { id: 'timeline-title' }, 'Next 24 hours'),
    tl.items.length === 0
      ? h('p', { class: 'muted' }, 'Nothing is scheduled in the next 24 hours.')
      : [
          h('div', { class: 'timeline-row timeline-axis', 'aria-hidden': 'true' }, h('div', { class: 'timeline-track' }, ticks)),
          [...rows.values()].map((runs) =>
            h(
              'div',
              { class: 'timeline-row', 'data-testid': 'timeline-row' },
              h('a', { class: 'timeline-label', href: href(schedulePath(runs[0].schedule_id)), title: `${runs[0].project}: ${runs[0].schedule}` }, `${runs[0].project}: ${runs[0].schedule}`),
              h(
                'div',
                { class: 'timeline-track' },
                runs.map((r) => h('span', { class: 'timeline-mark', style: `left: ${pct(r.at)}`, title: `${new Date(r.at).toLocaleString()} (${r.local} ${r.timezone})${r.dst ? ` — ${r.dst}` : ''}`, 'data-dst': r.dst ? 'true' : null })),
              ),
            ),
          ),
          h('details', null, h('summary', { class: 'small' }, `All ${tl.items.length} runs as a list${tl.truncated ? ' (the first 2,000)' : ''}`), list),
        ],
  );
}

function scheduleRow(s: ScheduleView, reload: () => void, report: (err: unknown) => void): HTMLTableRowElement {
  const admin = may(s.project, 'schedules.manage');
  const operator = may(s.project, 'run');
  const last = s.recent?.[0];
  const act = (fn: () => Promise<unknown>) => async () => {
    try {
      await fn();
      reload();
    } catch (err) {
      report(err);
    }
  };
  return h(
    'tr',
    { 'data-schedule': s.id },
    h('td', null, h('a', { href: href(schedulePath(s.id)) }, scheduleTitle(s)), s.from_code ? [' ', fromCodeBadge()] : null, s.read_only ? [' ', readOnlyBadge()] : null, h('div', { class: 'muted small mono' }, s.command, s.args ? ` ${s.args}` : '')),
    h('td', null, h('span', { class: 'mono' }, s.cron), h('div', { class: 'muted small' }, s.timezone)),
    h('td', null, s.paused ? h('span', { class: 'badge badge-off' }, 'paused') : timeEl(s.next_run_at)),
    h('td', null, last ? resultBadge(last) : h('span', { class: 'muted' }, '—')),
    h('td', null, resultStrip(s.recent ?? [])),
    h(
      'td',
      null,
      operator
        ? h(
            'div',
            { class: 'form-actions' },
            admin ? (s.paused ? button('Resume', act(() => schedulesApi.resume(s.id))) : button('Pause', act(() => schedulesApi.pause(s.id)))) : null,
            button('Run now', act(() => schedulesApi.runNow(s.id))),
          )
        : null,
    ),
  );
}

export async function schedulesPage(main: HTMLElement, route: Route): Promise<void> {
  // Who may add a schedule anywhere; each project's card and row ask for their own project.
  const admin = mayInSome('schedules.manage');
  const tlSlot = h('div', null, loading());
  const body = h('div', null, loading());
  const problems = h('div', { 'aria-live': 'polite' });
  const report = (err: unknown) => replace(problems, errorNotice(err));
  replace(main, pageTitle('Schedules', admin ? h('a', { href: href('/schedules/new'), class: 'button button-primary', 'data-testid': 'new-schedule' }, 'New schedule') : null), problems, tlSlot, body);
  const refresh = async () => {
    if (body.contains(document.activeElement)) return;
    try {
      const [projects, schedules, tl] = await Promise.all([api.projects(route.signal), schedulesApi.list(undefined, route.signal), schedulesApi.timeline(24, route.signal)]);
      replace(tlSlot, timeline(tl));
      if (schedules.items.length === 0) {
        replace(body, empty('No schedules yet.', admin ? h('p', null, h('a', { href: href('/schedules/new') }, 'Create one'), ' — or from the CLI: djangocommand schedule create --cron "0 3 * * *" clearsessions') : null));
        return;
      }
      replace(
        body,
        projects.items
          .filter((p) => schedules.items.some((s) => s.project_id === p.id))
          .map((p) =>
            h(
              'article',
              { class: 'card', 'data-project': p.name },
              h('div', { class: 'card-head' }, h('h2', null, h('a', { href: href(projectPath(p.name)) }, p.name)), may(p.name, 'schedules.manage') ? h('a', { href: href('/schedules/new', { project: p.name }), class: 'button' }, 'New schedule') : null),
              h(
                'div',
                { class: 'table-wrap' },
                dataTable(
                  { 'aria-label': `Schedules of ${p.name}` },
                  ['Schedule', 'When', 'Next run', 'Last result', 'Last 20', ''],
                  schedules.items.filter((s) => s.project_id === p.id).map((s) => scheduleRow(s, () => void refresh(), report)),
                ),
              ),
            ),
          ),
      );
    } catch (err) {
      if (!route.signal.aborted) replace(body, errorNotice(err));
    }
  };
  await refresh();
  every(REFRESH_MS, route.signal, refresh);
}
