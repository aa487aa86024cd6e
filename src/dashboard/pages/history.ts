/**
 * Executions history: filtered by project, command, status, person and time; paged with the
 * server's cursors (Previous walks back through the ones seen); and a duration-over-time chart
 * per command so that slow-downs show.
 */
import type { ExecutionView } from '../../shared/api.js';
import { api, type ExecutionFilters } from '../api.js';
import { h, replace } from '../dom.js';
import { durationChart } from '../durationChart.js';
import { filterBar, peopleOptions, readFilters, selectFilter, textFilter, timeFilter, type Filters } from '../filters.js';
import { ACTIVE, ALL_STATUSES, commandLine, elapsed, FAILED, statusBadge, timeEl } from '../format.js';
import { executionPath, href, replaceQuery, type Route } from '../router.js';
import { empty, errorNotice, every, loading, pageTitle, pager, dataTable } from '../ui.js';
import { readOnlyBadge } from '../readOnly.js';

const NAMES = ['project', 'command', 'status', 'created_by', 'since', 'until'];
const PAGE = 25;
const CHART_LIMIT = 500;

function row(e: ExecutionView): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-execution': e.id, 'data-command': e.command },
    h('td', null, statusBadge(e.status, e.cancel_requested), e.read_only ? [' ', readOnlyBadge()] : null),
    h('td', { class: 'cell-command' }, h('a', { href: href(executionPath(e.id)), class: 'mono' }, commandLine(e))),
    h('td', null, e.project),
    h('td', { class: 'cell-person' }, e.created_by),
    h('td', { class: 'nowrap' }, timeEl(e.created_at)),
    h('td', { class: 'num nowrap' }, elapsed(e)),
    h('td', { class: 'num' }, e.exit_code === null ? '—' : String(e.exit_code)),
  );
}

export async function historyPage(main: HTMLElement, route: Route): Promise<void> {
  let filters: Filters = readFilters(route.query, NAMES);
  const [projects, people] = await Promise.all([api.projects(route.signal).then((r) => r.items).catch(() => []), peopleOptions(route.signal)]);
  const commandNames = new Set<string>();

  const statusOptions: Array<[string, string]> = [
    ['', 'Any status'],
    [ACTIVE.join(','), 'Running or waiting'],
    [FAILED.join(','), 'Did not succeed'],
    ...ALL_STATUSES.map((s): [string, string] => [s, s.replace('_', ' ')]),
  ];
  const table = h('div', { class: 'table-wrap' }, loading());
  const chart = h('div', { class: 'chart-box' });
  const cursors: string[] = [];
  let cursor: string | undefined;

  const bar = filterBar(
    [
      selectFilter('project', 'Project', filters.project, [['', 'All projects'], ...projects.map((p): [string, string] => [p.name, p.name])]),
      textFilter('command', 'Command', filters.command, { placeholder: 'e.g. migrate', list: [] }),
      selectFilter('status', 'Status', filters.status, statusOptions),
      selectFilter('created_by', 'Person', filters.created_by, people),
      timeFilter('since', 'From', filters.since),
      timeFilter('until', 'To', filters.until),
    ],
    (f) => {
      filters = f;
      cursors.length = 0;
      cursor = undefined;
      replaceQuery('/history', f);
      void load(true);
    },
  );
  const datalist = bar.querySelector('datalist');

  replace(
    main,
    pageTitle('History'),
    bar,
    h('section', { class: 'card', 'aria-labelledby': 'chart-title' }, h('h2', { id: 'chart-title', class: 'card-title' }, 'Duration over time'), chart),
    h('section', { 'aria-label': 'Executions' }, table),
  );

  const query = (): ExecutionFilters => ({ ...filters });

  async function loadChart(): Promise<void> {
    try {
      const { items } = await api.executions({ ...query(), limit: CHART_LIMIT }, route.signal);
      for (const e of items) commandNames.add(e.command);
      if (datalist) replace(datalist, [...commandNames].sort().map((n) => h('option', { value: n })));
      const projectsShown = new Set(items.map((e) => e.project));
      replace(chart, durationChart(items, projectsShown.size > 1, chart.clientWidth));
    } catch (err) {
      if (!route.signal.aborted) replace(chart, errorNotice(err));
    }
  }

  async function load(withChart: boolean): Promise<void> {
    if (withChart) void loadChart();
    try {
      const page = await api.executions({ ...query(), limit: PAGE, cursor }, route.signal);
      if (page.items.length === 0 && !cursor) {
        replace(table, empty(Object.keys(filters).length ? 'No execution matches these filters.' : 'Nothing has run yet.', Object.keys(filters).length ? null : h('a', { href: '#/', class: 'button button-primary' }, 'Run a command')));
        return;
      }
      replace(
        table,
        dataTable({ 'data-testid': 'history-table' }, ['Status', 'Command', 'Project', 'Started by', 'Created', 'Duration', 'Exit'], page.items.map(row)),
        pager({
          label: 'Executions pages',
          hasPrevious: cursors.length > 0,
          next: page.next_cursor,
          onPrevious: () => {
            cursor = cursors.pop() || undefined;
            void load(false);
          },
          onNext: () => {
            cursors.push(cursor ?? '');
            cursor = page.next_cursor ?? undefined;
            void load(false);
          },
        }),
      );
    } catch (err) {
      if (!route.signal.aborted) replace(table, errorNotice(err));
    }
  }

  await load(true);
  // Keep the first page fresh while something is running; leave other pages still.
  every(5000, route.signal, async () => {
    if (cursor || table.contains(document.activeElement)) return;
    if (table.querySelector('[data-status="running"], [data-status="queued"], [data-status="dispatched"]')) await load(false);
  });
}
