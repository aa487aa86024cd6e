/**
 * Shells of a project (`#/shells?project=shop`): whether shells are allowed (admins turn them on
 * and set the idle timeout), a way to open one (read-only; writable only with a reason and a
 * confirmation), and every session with who, when, how long and whether it became writable,
 * each linking to its live terminal or its replay.
 */
import { api } from '../api.js';
import { h, replace, uid } from '../dom.js';
import { duration, timeEl } from '../format.js';
import { href, navigate, type Route } from '../router.js';
import { may, roleIn } from '../session.js';
import { button, dataTable, empty, errorNotice, field, loading, notice, pageTitle, setFieldError } from '../ui.js';
import { shellApi, type ShellSettingsView, type ShellView } from './shellApi.js';

export function shellPath(id: string): string {
  return `/shells/${encodeURIComponent(id)}`;
}

function sessionRow(s: ShellView): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-shell': s.id },
    h('td', null, timeEl(s.opened_at)),
    h('td', null, s.user),
    h('td', null, s.duration_ms === null ? (s.live ? 'running' : '—') : duration(s.duration_ms)),
    h('td', null, h('span', { class: `badge ${s.status === 'open' ? 'badge-ok' : s.status === 'refused' ? 'badge-refused' : 'badge-off'}` }, s.status)),
    h('td', null, s.became_writable ? h('span', { class: 'badge badge-refused', 'data-testid': 'became-writable' }, 'became writable') : h('span', { class: 'muted small' }, 'read-only')),
    h('td', null, s.end_reason ?? ''),
    h('td', null, h('a', { href: href(shellPath(s.id)) }, s.live ? 'Open terminal' : 'Replay')),
  );
}

function settingsCard(project: string, settings: ShellSettingsView, admin: boolean, reload: () => void): HTMLElement {
  const status = h('div', { 'aria-live': 'polite' });
  const idle = h('input', { type: 'number', min: '2', max: '86400', value: String(settings.idle_timeout_seconds), class: 'input', disabled: !admin });
  const idleField = field('Close idle shells after (seconds)', idle, { help: 'A warning comes a minute before.' });
  const save = async (enabled: boolean) => {
    try {
      await shellApi.saveSettings(project, { enabled, idle_timeout_seconds: Number(idle.value) });
      reload();
    } catch (err) {
      replace(status, errorNotice(err));
    }
  };
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'shell-settings-title' },
    h('h2', { id: 'shell-settings-title' }, 'Shells on ', project, ': ', h('span', { class: `badge ${settings.enabled ? 'badge-ok' : 'badge-off'}`, 'data-testid': 'shells-enabled' }, settings.enabled ? 'on' : 'off')),
    h('p', { class: 'muted small' }, settings.updated_by ? `Last changed by ${settings.updated_by}.` : 'Shells are off until an admin turns them on.'),
    admin ? idleField.el : null,
    admin
      ? h('div', { class: 'card-actions' }, settings.enabled ? button('Turn shells off', () => void save(false), { kind: 'danger', testid: 'shells-off' }) : button('Turn shells on', () => void save(true), { kind: 'primary', testid: 'shells-on' }), settings.enabled ? button('Save idle timeout', () => void save(true)) : null)
      : h('p', { class: 'muted small' }, 'Only an admin may change this.'),
    status,
  );
}

function openCard(project: string, mayWrite: boolean): HTMLElement {
  const writable = h('input', { type: 'checkbox', id: uid('write') });
  const reason = h('textarea', { class: 'input', rows: 2, placeholder: 'What you will change and why', disabled: true });
  const reasonField = field('Reason (required for a writable shell)', reason, { help: 'Goes to the audit log and to the project\u2019s notification channels.' });
  const status = h('div', { 'aria-live': 'polite' });
  writable.addEventListener('change', () => (reason.disabled = !writable.checked));
  const open = async () => {
    setFieldError(reason, reasonField.error, null);
    if (writable.checked) {
      if (!reason.value.trim()) return setFieldError(reason, reasonField.error, 'Give a reason for a writable shell.');
      if (!window.confirm(`Open a WRITABLE shell on ${project}?\n\nReason: ${reason.value.trim()}\n\nThis is recorded in the audit log and announced to the team.`)) return;
    }
    replace(status, loading('Starting the shell on a runner…'));
    try {
      const s = await shellApi.open(project, { write: writable.checked, ...(writable.checked ? { reason: reason.value } : {}), cols: 120, rows: 32 });
      navigate(shellPath(s.id));
    } catch (err) {
      replace(status, errorNotice(err));
    }
  };
  return h(
    'section',
    { class: 'card', 'aria-labelledby': 'shell-open-title' },
    h('h2', { id: 'shell-open-title' }, 'Open a shell'),
    h('p', { class: 'muted small' }, '`manage.py shell` on a runner of this project, read-only: writes fail until the server allows them. Everything typed and printed is recorded.'),
    // Writable shells are for project admins; operators open read-only ones.
    mayWrite ? [h('label', { class: 'checkbox', for: writable.id }, writable, ' Writable from the start'), reasonField.el] : null,
    h('div', { class: 'card-actions' }, button('Open shell', () => void open(), { kind: 'primary', testid: 'open-shell' })),
    status,
  );
}

export async function shellsPage(main: HTMLElement, route: Route): Promise<void> {
  const projects = (await api.projects(route.signal)).items;
  const project = route.query.get('project') ?? projects[0]?.name;
  const admin = project ? may(project, 'shell.write') : false;
  const picker = h('select', { class: 'input', 'aria-label': 'Project' }, projects.map((p) => h('option', { value: p.name, selected: p.name === project }, p.name)));
  picker.addEventListener('change', () => navigate(href('/shells', { project: picker.value })));
  const body = h('div', null, loading());
  replace(main, pageTitle('Shells', picker), body);
  if (!project) return replace(body, empty('There is no project yet.'));
  const load = async () => {
    try {
      const [settings, sessions] = await Promise.all([shellApi.settings(project, route.signal), admin ? shellApi.list(project, route.signal) : Promise.resolve({ items: [] as ShellView[] })]);
      replace(
        body,
        settingsCard(project, settings, may(project, 'project.manage'), () => void load()),
        !settings.enabled
          ? notice('info', 'Shells are off for this project.')
          : may(project, 'shell.read')
            ? openCard(project, admin)
            : notice('info', `Your role in ${project} is ${roleIn(project) ?? 'none'}: an operator opens read-only shells, an admin writable ones.`),
        h('h2', null, 'Sessions'),
        !admin
          ? h('p', { class: 'muted' }, 'Only an admin may list shell sessions.')
          : sessions.items.length
            ? dataTable({ 'data-testid': 'shell-sessions' }, ['Opened', 'Who', 'Duration', 'Status', 'Writable', 'Ended because', ''], sessions.items.map(sessionRow))
            : empty('No shell session yet.'),
      );
    } catch (err) {
      if (!route.signal.aborted) replace(body, errorNotice(err));
    }
  };
  await load();
}
