/** The audit log: who did what, filtered and paged, exported as CSV or JSON lines. */
import type { AuditChainView, AuditEventView, ProjectView } from '../../shared/api.js';
import { api, type AuditFilters } from '../api.js';
import { h, replace } from '../dom.js';
import { filterBar, readFilters, selectFilter, textFilter, timeFilter, type Filters } from '../filters.js';
import { timeEl } from '../format.js';
import { executionPath, href, replaceQuery, type Route } from '../router.js';
import { empty, errorNotice, loading, notice, pageTitle, pager, dataTable } from '../ui.js';

const NAMES = ['project', 'action', 'actor_type', 'execution', 'since', 'until'];
const PAGE = 50;
const ACTIONS = [
  'execution.create', 'execution.start', 'execution.complete', 'execution.cancel', 'execution.lost', 'execution.timed_out',
  'session.login', 'session.logout', 'project.create', 'runner_key.create', 'runner_key.revoke', 'token.create', 'token.revoke',
  'user.create', 'command.update', 'runner.connect',
];

function details(d: Record<string, unknown>): HTMLElement | string {
  const entries = Object.entries(d);
  if (entries.length === 0) return '';
  const text = entries.map(([k, v]) => `${k}: ${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' · ');
  return h('span', { class: 'audit-details mono small', title: JSON.stringify(d, null, 2) }, text.length > 240 ? `${text.slice(0, 240)}…` : text);
}

/** A shell's events (shell.open, shell.writable, ...) link to its replay. */
function shellLink(d: Record<string, unknown>): HTMLElement | string {
  const id = typeof d.session_id === 'string' && /^[0-9a-f-]{36}$/.test(d.session_id) ? d.session_id : null;
  return id ? h('a', { href: href(`/shells/${id}`), class: 'small', 'data-testid': 'audit-shell-link', title: id }, 'shell replay') : '—';
}

function row(a: AuditEventView, projectNames: Map<string, string>): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-action': a.action, 'data-execution': a.execution_id ?? '' },
    h('td', { class: 'nowrap' }, timeEl(a.at)),
    h('td', null, h('div', null, a.actor), h('div', { class: 'muted small' }, a.actor_type, a.address ? ` · ${a.address}` : '')),
    h('td', null, h('span', { class: 'mono' }, a.action), ' ', h('span', { class: `badge outcome-${a.outcome}` }, a.outcome)),
    h('td', null, a.project_id ? projectNames.get(a.project_id) ?? a.project_id.slice(0, 8) : '—'),
    h('td', null, a.execution_id ? h('a', { href: href(executionPath(a.execution_id)), class: 'mono small', title: a.execution_id }, a.execution_id.slice(0, 8)) : shellLink(a.details)),
    h('td', { class: 'cell-details' }, details(a.details)),
  );
}

/** When the hash chain was last verified (on the server host) and what was found. */
function chainStatus(chain: AuditChainView | null): HTMLElement {
  const how = h('code', null, 'djangocommand admin audit verify');
  if (!chain) return notice('warning', 'The state of the audit hash chain could not be read.');
  const v = chain.last_verification;
  if (!v) return h('div', { 'data-testid': 'audit-chain' }, notice('warning', 'The audit hash chain has never been verified. Run ', how, ' on the server host (e.g. daily from cron).'));
  if (v.ok) {
    return h('div', { 'data-testid': 'audit-chain', 'data-ok': 'true' }, notice('success', 'Hash chain verified whole ', timeEl(v.at), `: ${v.events} event(s) checked, up to #${v.head_seq}. Verify again with `, how, '.'));
  }
  return h('div', { 'data-testid': 'audit-chain', 'data-ok': 'false' }, notice('error', h('strong', null, 'The audit hash chain is broken'), ' (verified ', timeEl(v.at), `): ${v.problem ?? 'unknown problem'}`));
}

export async function auditPage(main: HTMLElement, route: Route): Promise<void> {
  let filters: Filters = readFilters(route.query, NAMES);
  const projects: ProjectView[] = await api.projects(route.signal).then((r) => r.items).catch(() => []);
  const projectNames = new Map(projects.map((p) => [p.id, p.name]));
  const chain = await api.auditChain(route.signal).catch(() => null);
  const table = h('div', { class: 'table-wrap' }, loading());
  const cursors: string[] = [];
  let cursor: string | undefined;

  const csv = h('a', { class: 'button', 'data-testid': 'export-csv', download: 'audit.csv' }, 'Export CSV');
  const jsonl = h('a', { class: 'button', 'data-testid': 'export-jsonl', download: 'audit.jsonl' }, 'Export JSON lines');
  const paintExports = () => {
    csv.href = api.auditExportUrl('csv', filters as AuditFilters);
    jsonl.href = api.auditExportUrl('jsonl', filters as AuditFilters);
  };
  paintExports();

  const bar = filterBar(
    [
      selectFilter('project', 'Project', filters.project, [['', 'All projects'], ...projects.map((p): [string, string] => [p.name, p.name])]),
      textFilter('action', 'Action', filters.action, { placeholder: 'e.g. execution.create', list: ACTIONS }),
      selectFilter('actor_type', 'Actor', filters.actor_type, [['', 'Anyone'], ['user', 'person (signed in)'], ['token', 'API token'], ['runner', 'runner'], ['system', 'system']]),
      textFilter('execution', 'Execution id', filters.execution, { placeholder: 'UUID' }),
      timeFilter('since', 'From', filters.since),
      timeFilter('until', 'To', filters.until),
    ],
    (f) => {
      filters = f;
      cursors.length = 0;
      cursor = undefined;
      replaceQuery('/audit', f);
      paintExports();
      void load();
    },
  );

  replace(main, pageTitle('Audit log', csv, jsonl), chainStatus(chain), bar, table);

  async function load(): Promise<void> {
    try {
      const page = await api.audit({ ...(filters as AuditFilters), limit: PAGE, cursor }, route.signal);
      if (page.items.length === 0 && !cursor) {
        replace(table, empty(Object.keys(filters).length ? 'No event matches these filters.' : 'The audit log is empty.'));
        return;
      }
      replace(
        table,
        dataTable({ 'data-testid': 'audit-table' }, ['When', 'Who', 'What', 'Project', 'Execution', 'Details'], page.items.map((a) => row(a, projectNames))),
        pager({
          label: 'Audit pages',
          hasPrevious: cursors.length > 0,
          next: page.next_cursor,
          onPrevious: () => {
            cursor = cursors.pop() || undefined;
            void load();
          },
          onNext: () => {
            cursors.push(cursor ?? '');
            cursor = page.next_cursor ?? undefined;
            void load();
          },
        }),
      );
    } catch (err) {
      if (!route.signal.aborted) replace(table, errorNotice(err));
    }
  }
  await load();
}
