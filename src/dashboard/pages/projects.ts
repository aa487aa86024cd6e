/**
 * Projects overview: for each project its runners (online or not, versions, last heartbeat),
 * what runs now and the last failures, refreshed every few seconds; the way in to running a
 * command.
 */
import type { ExecutionView, ProjectView, RunnerView } from '../../shared/api.js';
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { ACTIVE, ago, commandLine, elapsed, FAILED, statusBadge, timeEl } from '../format.js';
import { executionPath, href, projectPath, type Route } from '../router.js';
import { isOwner, may, roleIn } from '../session.js';
import { empty, errorNotice, every, loading, pageTitle } from '../ui.js';

const REFRESH_MS = 5000;

interface ProjectState {
  runners: RunnerView[];
  active: ExecutionView[];
  failures: ExecutionView[];
}

async function loadProject(p: ProjectView, signal: AbortSignal): Promise<ProjectState> {
  const [runners, active, failures] = await Promise.all([
    api.runners(p.name, signal),
    api.executions({ project: p.name, status: ACTIVE.join(','), limit: 10 }, signal),
    api.executions({ project: p.name, status: FAILED.join(','), limit: 5 }, signal),
  ]);
  return { runners: runners.items, active: active.items, failures: failures.items };
}

function runnerRow(r: RunnerView): HTMLElement {
  return h(
    'li',
    { class: 'runner', 'data-online': String(r.online) },
    h('span', { class: `dot ${r.online ? 'dot-online' : 'dot-offline'}`, 'aria-hidden': 'true' }),
    h(
      'div',
      { class: 'runner-main' },
      h('div', null, h('strong', null, r.hostname || r.address), ' ', h('span', { class: `badge ${r.online ? 'badge-ok' : 'badge-off'}` }, r.online ? 'online' : 'offline')),
      h(
        'div',
        { class: 'muted small' },
        [`runner ${r.runner_version || '?'} (${r.protocol})`, r.python_version && `Python ${r.python_version}`, r.django_version && `Django ${r.django_version}`].filter(Boolean).join(' · '),
      ),
      h('div', { class: 'muted small' }, 'last heartbeat ', h('time', { datetime: r.last_seen_at, title: new Date(r.last_seen_at).toLocaleString() }, ago(r.last_seen_at)), r.address ? ` · ${r.address}` : ''),
      r.protocol === 'v1'
        ? h('div', { class: 'small', 'data-testid': 'runner-unscrubbed' }, '⚠ The Python runner (protocol v1) does not scrub secrets from output on its host: use the djangocommand runner for that.')
        : null,
    ),
  );
}

function executionRow(e: ExecutionView): HTMLElement {
  return h(
    'li',
    { class: 'exec-row' },
    statusBadge(e.status, e.cancel_requested),
    h('a', { href: href(executionPath(e.id)), class: 'mono exec-cmd' }, commandLine(e)),
    h('span', { class: 'muted small exec-meta' }, e.created_by, ' · ', timeEl(e.created_at), ' · ', elapsed(e), e.exit_code !== null ? ` · exit ${e.exit_code}` : ''),
  );
}

function projectBody(p: ProjectView, s: ProjectState): HTMLElement[] {
  return [
    h(
      'section',
      { class: 'card-section' },
      h('h3', null, 'Runners'),
      s.runners.length
        ? h('ul', { class: 'runner-list' }, s.runners.map(runnerRow))
        : h('p', { class: 'muted' }, 'No runner has connected yet. Start one next to manage.py with this project\u2019s runner key (Settings → Runner keys).'),
    ),
    h(
      'section',
      { class: 'card-section' },
      h('h3', null, 'Running now'),
      s.active.length ? h('ul', { class: 'exec-list' }, s.active.map(executionRow)) : h('p', { class: 'muted' }, 'Nothing is running.'),
    ),
    h(
      'section',
      { class: 'card-section' },
      h('h3', null, 'Last failures'),
      s.failures.length
        ? h('ul', { class: 'exec-list' }, s.failures.map(executionRow))
        : h('p', { class: 'muted' }, 'No failures.'),
      s.failures.length ? h('a', { href: href('/history', { project: p.name, status: FAILED.join(',') }), class: 'small' }, 'All failures of ', p.name, ' →') : null,
    ),
  ];
}

export async function projectsPage(main: HTMLElement, route: Route): Promise<void> {
  const list = h('div', { class: 'project-grid' }, loading());
  replace(main, pageTitle('Projects'), list);
  const { items } = await api.projects(route.signal);
  if (items.length === 0) {
    replace(
      list,
      empty(
        'There is no project yet.',
        isOwner()
          ? h('p', null, h('a', { href: '#/settings', class: 'button button-primary' }, 'Create a project'), ' and start a runner with its key next to manage.py.')
          : h('p', null, 'You are not a member of any project yet: ask a project admin to add you, or an owner to create one.'),
      ),
    );
    return;
  }
  list.replaceChildren();
  const bodies = new Map<string, HTMLElement>();
  const headers = new Map<string, HTMLElement>();
  for (const p of items) {
    const body = h('div', { class: 'card-body' }, loading());
    const meta = h('span', { class: 'muted small' });
    bodies.set(p.name, body);
    headers.set(p.name, meta);
    list.append(
      h(
        'article',
        { class: 'card project-card', 'data-project': p.name, 'aria-labelledby': `project-${p.id}` },
        h(
          'div',
          { class: 'card-head' },
          h('div', null, h('h2', { id: `project-${p.id}` }, h('a', { href: href(projectPath(p.name)) }, p.name)), meta, roleIn(p.name) ? [' ', h('span', { class: 'badge', 'data-testid': 'my-role', title: 'Your role in this project' }, roleIn(p.name))] : null),
          h(
            'div',
            { class: 'card-actions' },
            may(p.name, 'run')
              ? h('a', { href: href(projectPath(p.name)), class: 'button button-primary', 'data-testid': `run-in-${p.name}` }, 'Run a command')
              : h('a', { href: href(projectPath(p.name)), class: 'button', 'data-testid': `commands-of-${p.name}` }, 'Commands'),
            h('a', { href: href('/history', { project: p.name }), class: 'button' }, 'History'),
            h('a', { href: href(`${projectPath(p.name)}/members`), class: 'button button-plain', 'data-testid': `members-of-${p.name}` }, 'Members'),
          ),
        ),
        body,
      ),
    );
  }
  const refresh = async () => {
    let fresh = items;
    try {
      fresh = (await api.projects(route.signal)).items;
    } catch {
      // Keep the names we have; each card shows its own error below.
    }
    await Promise.all(
      fresh.map(async (p) => {
        const body = bodies.get(p.name);
        // Never pull the page from under a keyboard user: a card holding the focus waits.
        if (!body || body.contains(document.activeElement)) return;
        headers.get(p.name)!.textContent = `${p.runners_online} runner${p.runners_online === 1 ? '' : 's'} online · ${p.active_executions} active`;
        try {
          replace(body, projectBody(p, await loadProject(p, route.signal)));
        } catch (err) {
          if (!route.signal.aborted) replace(body, errorNotice(err));
        }
      }),
    );
  };
  await refresh();
  every(REFRESH_MS, route.signal, refresh);
}
