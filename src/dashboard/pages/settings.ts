/**
 * Settings: personal API tokens (limited to projects, read-only, expiring; shown once; revoke),
 * browser sessions (end one), runner keys of the projects one administers, and for owners:
 * projects (create: the runner key is shown once), users (create with a one-time password,
 * disable, remove, make owner; their sessions) and every user's tokens.
 */
import type { ProjectView } from '../../shared/api.js';
import { api } from '../api.js';
import { accessApi, type SessionView, type TokenView, type UserView } from '../accessApi.js';
import { h, replace, uid, type Child } from '../dom.js';
import { expiryField, expiryText } from '../expiryField.js';
import { timeEl } from '../format.js';
import type { Route } from '../router.js';
import { isOwner, loadRoles, may, signedInUser } from '../session.js';
import { button, errorNotice, field, loading, notice, pageTitle, secretOnce, dataTable } from '../ui.js';

function section(id: string, title: string, intro: string, ...content: Array<HTMLElement | null>): HTMLElement {
  return h('section', { class: 'card settings-section', id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title`, class: 'card-title' }, title), h('p', { class: 'muted small' }, intro), ...content);
}

/** A one-line form: a name and a button; `create` returns what to show below it. */
function createForm(label: string, submitText: string, create: (name: string) => Promise<HTMLElement>, opts: { placeholder?: string; testid?: string } = {}): { form: HTMLElement; result: HTMLElement } {
  const input = h('input', { type: 'text', name: 'name', required: true, placeholder: opts.placeholder ?? '', autocomplete: 'off', 'data-testid': opts.testid });
  const result = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, submitText);
  const f = field(label, input);
  const form = h(
    'form',
    {
      class: 'inline-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        if (!input.value.trim()) {
          f.error.textContent = `Give a ${label.toLowerCase()}.`;
          input.focus();
          return;
        }
        f.error.textContent = '';
        submit.disabled = true;
        try {
          replace(result, await create(input.value.trim()));
          input.value = '';
        } catch (err) {
          replace(result, errorNotice(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    f.el,
    submit,
  );
  return { form, result };
}

/** A button that asks first, then calls `act` and `done`; errors go to `errors`. */
function confirmButton(label: string, question: string, act: () => Promise<unknown>, done: () => void, errors: HTMLElement, kind: 'danger' | 'plain' | undefined = 'danger'): HTMLElement {
  return button(label, async () => {
    if (!window.confirm(question)) return;
    try {
      await act();
    } catch (err) {
      replace(errors, errorNotice(err));
      return;
    }
    done();
  }, { kind });
}

function revokeButton(question: string, revoke: () => Promise<unknown>, done: () => void, errors: HTMLElement): HTMLElement {
  return confirmButton('Revoke', question, revoke, done, errors);
}

/** A table that scrolls sideways inside its card rather than spilling out of it. */
const wrap = (table: HTMLElement) => h('div', { class: 'table-wrap' }, table);

const revokedBadge = () => h('span', { class: 'badge badge-off' }, 'revoked');

/** What a token may reach: its projects (or all of its owner's) and whether it is read-only. */
function limitsText(t: TokenView, projectNames: ReadonlyMap<string, string>): string {
  const where = t.project_ids === null ? 'all projects' : t.project_ids.map((id) => projectNames.get(id) ?? id).join(', ') || 'no project';
  return `${where}${t.read_only ? ' · read-only' : ''}`;
}

function tokensSection(projects: ProjectView[]): HTMLElement {
  const projectNames = new Map(projects.map((p) => [p.id, p.name]));
  const list = h('div', null, loading());
  const errors = h('div', { 'aria-live': 'assertive' });
  const refresh = async () => {
    try {
      const { items } = await accessApi.tokens(false);
      if (!items.length) return replace(list, h('p', { class: 'muted' }, 'You have no API token.'));
      const rows = items.map((t) =>
        h(
          'tr',
          null,
          h('td', null, t.name, h('div', { class: 'muted small mono' }, `${t.prefix}…`)),
          h('td', { 'data-testid': 'token-limits' }, limitsText(t, projectNames), h('div', { class: 'muted small' }, 'made ', timeEl(t.created_at))),
          h('td', null, expiryText(t.expires_at)),
          h('td', null, t.last_used_at ? timeEl(t.last_used_at, true) : 'never'),
          h(
            'td',
            { class: 'cell-actions' },
            t.revoked_at ? revokedBadge() : revokeButton(`Revoke the token "${t.name}"? Whatever uses it stops working at once.`, () => accessApi.revokeToken(t.id), () => void refresh(), errors),
          ),
        ),
      );
      replace(list, errors, wrap(dataTable({ 'data-testid': 'tokens-table' }, ['Name', 'Reaches', 'Expires', 'Last used', ''], rows)));
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };

  const name = h('input', { type: 'text', name: 'name', required: true, placeholder: 'e.g. CI deploys', autocomplete: 'off', 'data-testid': 'token-name' });
  const nameField = field('Token name', name);
  const only = h(
    'select',
    { name: 'projects', multiple: true, size: String(Math.min(4, Math.max(2, projects.length))), 'data-testid': 'token-projects' },
    projects.map((p) => h('option', { value: p.name }, p.name)),
  );
  const readOnly = h('input', { type: 'checkbox', name: 'read_only', id: uid('read-only'), 'data-testid': 'token-read-only' });
  const expiry = expiryField();
  const result = h('div', { 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, 'Create token');
  const form = h(
    'form',
    {
      class: 'inline-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        if (!name.value.trim()) {
          nameField.error.textContent = 'Give a token name.';
          return name.focus();
        }
        nameField.error.textContent = '';
        const expiresAt = expiry.read();
        if (expiresAt === undefined) return;
        const chosen = Array.from(only.selectedOptions, (o) => o.value);
        submit.disabled = true;
        try {
          const t = await accessApi.createToken({ name: name.value.trim(), ...(chosen.length ? { projects: chosen } : {}), read_only: readOnly.checked, expires_at: expiresAt });
          const limits = `${chosen.length ? `Limited to ${chosen.join(', ')}` : 'All your projects'}${t.read_only ? ', read-only' : ''}; expires ${expiryText(t.expires_at)}.`;
          replace(result, secretOnce(`API token "${t.name}"`, t.token, `${limits} Use it as "Authorization: Bearer …" or DJANGOCOMMAND_TOKEN for the CLI.`));
          name.value = '';
          readOnly.checked = false;
          for (const o of Array.from(only.options)) o.selected = false;
          expiry.reset();
          void refresh();
        } catch (err) {
          replace(result, errorNotice(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    nameField.el,
    field('Only these projects', only, { help: 'None chosen: every project you are a member of (also later ones).' }).el,
    h('div', { class: 'field field-check' }, h('div', { class: 'check' }, readOnly, h('label', { for: readOnly.id }, 'Read-only')), h('p', { class: 'field-help' }, 'At most viewer: sees, never runs or changes.')),
    expiry.el,
    submit,
  );
  void refresh();
  return section('tokens', 'Personal API tokens', 'For the CLI and scripts: a token acts as you, with your roles, narrowed to some projects or to read-only if you like. It is shown once; store it in a secret manager.', form, result, list);
}

/** One person's browser sessions; the one this page runs in is marked and ends with "Sign out". */
function sessionsTable(email: string, items: SessionView[], refresh: () => void, errors: HTMLElement): HTMLElement {
  if (!items.length) return h('p', { class: 'muted' }, `${email} has no open session.`);
  return wrap(dataTable(
    { 'data-testid': 'sessions-table', 'aria-label': `Sessions of ${email}` },
    ['Signed in', 'From', 'Expires', ''],
    items.map((s) =>
      h(
        'tr',
        { 'data-current': String(s.current) },
        h('td', null, timeEl(s.created_at), s.current ? [' ', h('span', { class: 'badge badge-ok' }, 'this browser')] : null),
        h('td', { class: 'mono' }, s.address ?? '—'),
        h('td', null, timeEl(s.expires_at)),
        h('td', { class: 'cell-actions' }, s.current ? h('span', { class: 'muted small' }, 'Sign out to end it') : confirmButton('End', `End this session of ${email}? That browser is signed out at once.`, () => accessApi.endSession(email, s.id), refresh, errors)),
      ),
    ),
  ));
}

function sessionsSection(me: string, users: UserView[] | null): HTMLElement {
  const list = h('div', null, loading());
  const errors = h('div', { 'aria-live': 'assertive' });
  let whose = me;
  const refresh = async () => {
    try {
      const { items } = await accessApi.sessions(whose);
      replace(list, errors, sessionsTable(whose, items, () => void refresh(), errors));
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };
  let picker: HTMLElement | null = null;
  if (users) {
    const select = h('select', { name: 'sessions-of', 'data-testid': 'sessions-of' }, users.map((u) => h('option', { value: u.email, selected: u.email === me }, u.email === me ? `${u.email} (me)` : u.email)));
    select.addEventListener('change', () => {
      whose = select.value;
      errors.replaceChildren();
      void refresh();
    });
    picker = h('div', { class: 'inline-form' }, field('Sessions of', select).el);
  }
  void refresh();
  return section('sessions', 'Sessions', users ? 'Signed-in browsers, yours or anyone\u2019s: ending one signs that browser out at once. Sessions also end by themselves after a while.' : 'The browsers you are signed in with. Ending one signs that browser out at once.', picker, list);
}

/** Every user's tokens (owners): revoke any. */
function allTokensSection(users: UserView[], projects: ProjectView[]): HTMLElement {
  const emails = new Map(users.map((u) => [u.id, u.email]));
  const projectNames = new Map(projects.map((p) => [p.id, p.name]));
  const list = h('div', null, loading());
  const errors = h('div', { 'aria-live': 'assertive' });
  const refresh = async () => {
    try {
      const { items } = await accessApi.tokens(true);
      if (!items.length) return replace(list, h('p', { class: 'muted' }, 'Nobody has an API token.'));
      const rows = items.map((t) =>
        h(
          'tr',
          null,
          h('td', null, t.name, h('div', { class: 'muted small' }, emails.get(t.user_id) ?? t.user_id), h('div', { class: 'muted small mono' }, `${t.prefix}…`)),
          h('td', null, limitsText(t, projectNames)),
          h('td', null, expiryText(t.expires_at)),
          h('td', null, t.last_used_at ? timeEl(t.last_used_at, true) : 'never'),
          h('td', { class: 'cell-actions' }, t.revoked_at ? revokedBadge() : revokeButton(`Revoke the token "${t.name}" of ${emails.get(t.user_id) ?? 'this user'}? Whatever uses it stops working at once.`, () => accessApi.revokeToken(t.id), () => void refresh(), errors)),
        ),
      );
      replace(list, errors, wrap(dataTable({ 'data-testid': 'all-tokens-table' }, ['Token, whose', 'Reaches', 'Expires', 'Last used', ''], rows)));
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };
  void refresh();
  return section('all-tokens', 'Everyone\u2019s API tokens', 'Personal tokens of every user (owners see them all). Revoke one that leaked or is no longer needed.', list);
}

function projectList(projects: ProjectView[]): HTMLElement {
  return projects.length
    ? h('ul', { class: 'plain-list' }, projects.map((p) => h('li', null, h('strong', null, p.name), h('span', { class: 'muted small' }, ' · created ', timeEl(p.created_at), ` · ${p.runners_online} runner(s) online`))))
    : h('p', { class: 'muted' }, 'No project yet.');
}

function projectsSection(list: HTMLElement, onCreated: () => void): HTMLElement {
  const { form, result } = createForm('Project name', 'Create project', async (name) => {
    const r = await api.createProject(name);
    onCreated();
    return h(
      'div',
      null,
      secretOnce(`Runner key for ${r.project.name}`, r.runner_key.key, 'Put it in the Django settings of that project:'),
      h('pre', { class: 'mono snippet' }, `DJANGOCOMMAND_API_KEY = "${r.runner_key.key}"\nDJANGOCOMMAND_SERVER_URL = "${location.origin}"`),
      h('p', { class: 'small muted' }, 'Then start a runner next to manage.py: ', h('code', null, 'djangocommand start -d'), '.'),
    );
  }, { placeholder: 'e.g. shop', testid: 'project-name' });
  return section('projects', 'Projects', 'One project per Django deployment. Creating one makes its first runner key.', form, result, list);
}

/** The runner keys of one project at a time (projects the person administers); `setProjects` keeps the choice. */
function keysSection(): { el: HTMLElement; setProjects: (projects: ProjectView[]) => void } {
  const select = h('select', { name: 'project', 'aria-label': 'Project' });
  const list = h('div', null);
  const result = h('div', { 'aria-live': 'polite' });
  const refresh = async () => {
    const project = select.value;
    if (!project) return replace(list, h('p', { class: 'muted' }, 'Create a project first.'));
    replace(list, loading());
    try {
      const { items } = await api.keys(project);
      if (!items.length) return replace(list, h('p', { class: 'muted' }, 'No runner key.'));
      const rows = items.map((k) =>
        h(
          'tr',
          null,
          h('td', null, k.name),
          h('td', { class: 'mono' }, `${k.prefix}…`),
          h('td', null, timeEl(k.created_at)),
          h(
            'td',
            { class: 'cell-actions' },
            k.revoked_at ? revokedBadge() : revokeButton(`Revoke the runner key "${k.name}" of ${project}? Runners using it are cut off at once.`, () => api.revokeKey(project, k.id), () => void refresh(), result),
          ),
        ),
      );
      replace(list, wrap(dataTable({ 'data-testid': 'keys-table' }, ['Name', 'Prefix', 'Created', ''], rows)));
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };
  select.addEventListener('change', () => {
    result.replaceChildren();
    void refresh();
  });
  const nameInput = h('input', { type: 'text', name: 'key-name', placeholder: 'e.g. web-1', autocomplete: 'off' });
  const create = h(
    'form',
    {
      class: 'inline-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        try {
          const k = await api.createKey(select.value, nameInput.value.trim() || 'dashboard');
          nameInput.value = '';
          replace(result, secretOnce(`Runner key "${k.name}" for ${select.value}`, k.key, 'Set it as DJANGOCOMMAND_API_KEY in that project\u2019s Django settings.'));
          void refresh();
        } catch (err) {
          replace(result, errorNotice(err));
        }
      },
    },
    field('Key name', nameInput).el,
    h('button', { type: 'submit', class: 'button button-primary' }, 'Create key'),
  );
  const el = section(
    'keys',
    'Runner keys',
    'A runner authenticates with its project\u2019s key. Make one key per host, so that one can be revoked alone. Shown for the projects you administer.',
    h('div', { class: 'inline-form' }, field('Project', select).el),
    create,
    result,
    list,
  );
  const setProjects = (projects: ProjectView[]) => {
    const chosen = select.value;
    select.replaceChildren(...projects.map((p) => h('option', { value: p.name, selected: p.name === chosen }, p.name)));
    create.hidden = projects.length === 0;
    if (select.value !== chosen || projects.length === 0) void refresh();
  };
  return { el, setProjects };
}

/** What a user's row says about them beyond the email. */
function userState(u: UserView): Child[] {
  const badges: HTMLElement[] = [];
  if (u.disabled) badges.push(h('span', { class: 'badge badge-off' }, 'disabled'));
  if (u.must_change_password) badges.push(h('span', { class: 'badge badge-read-only', title: 'Must set a new password at the next sign-in' }, 'one-time password'));
  if (!badges.length) badges.push(h('span', { class: 'badge badge-ok' }, 'active'));
  return badges.flatMap((b, i) => (i ? [' ', b] : [b]));
}

function usersSection(onChanged: () => void): HTMLElement {
  const list = h('div', null, loading());
  const errors = h('div', { 'aria-live': 'assertive' });
  const me = signedInUser()?.email;
  const change = (u: UserView, what: { disabled?: boolean; owner?: boolean }, done: string) => async () => {
    try {
      await accessApi.updateUser(u.email, what);
      replace(errors, notice('success', done));
    } catch (err) {
      replace(errors, errorNotice(err));
    }
    void refresh();
    onChanged();
  };
  const row = (u: UserView): HTMLTableRowElement => {
    const self = u.email === me;
    return h(
      'tr',
      { 'data-user': u.email },
      h('td', null, u.email, self ? ' (you)' : '', h('div', { class: 'muted small' }, u.owner ? 'owner' : 'user', ' · since ', timeEl(u.created_at))),
      h('td', { 'data-testid': 'user-state' }, userState(u)),
      h(
        'td',
        { class: 'cell-actions' },
        self
          ? h('span', { class: 'muted small' }, 'Another owner can change you')
          : [
              u.disabled
                ? button('Enable', change(u, { disabled: false }, `${u.email} can sign in again.`))
                : confirmButton('Disable', `Disable ${u.email}? Their sessions, tokens and live streams end at once; their history stays.`, () => accessApi.updateUser(u.email, { disabled: true }), () => {
                    replace(errors, notice('success', `${u.email} is disabled and signed out everywhere.`));
                    void refresh();
                    onChanged();
                  }, errors),
              u.owner ? button('Unmake owner', change(u, { owner: false }, `${u.email} is no longer an owner.`)) : button('Make owner', change(u, { owner: true }, `${u.email} is now an owner: users, projects, and admin of every project.`)),
              confirmButton('Remove', `Remove ${u.email}? They lose every membership, token and session; their past runs stay attributed to them. This cannot be undone.`, () => accessApi.removeUser(u.email), () => {
                replace(errors, notice('success', `${u.email} was removed.`));
                void refresh();
                onChanged();
              }, errors),
            ],
      ),
    );
  };
  const refresh = async () => {
    try {
      const { items } = await accessApi.users();
      replace(list, wrap(dataTable({ 'data-testid': 'users-table' }, ['Email', 'State', ''], items.map(row))));
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const password = h('input', { type: 'password', name: 'password', required: true, autocomplete: 'new-password', minlength: '12' });
  const owner = h('input', { type: 'checkbox', name: 'owner', id: 'new-user-owner' });
  const result = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    {
      class: 'inline-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        try {
          const u = await accessApi.createUser(email.value.trim(), password.value, owner.checked);
          replace(
            result,
            notice(
              'success',
              `${u.email} can now sign in${u.owner ? ' as an owner' : ''}. The password you gave is a one-time password: tell it to them through a safe channel; their first sign-in asks them to set their own. `,
              u.owner ? null : 'Add them to projects on each project\u2019s Members page.',
            ),
          );
          email.value = '';
          password.value = '';
          owner.checked = false;
          void refresh();
          onChanged();
        } catch (err) {
          replace(result, errorNotice(err));
        }
      },
    },
    field('Email', email).el,
    field('One-time password', password, { help: 'At least 12 characters; they set their own at the first sign-in.' }).el,
    h('div', { class: 'field field-check' }, h('div', { class: 'check' }, owner, h('label', { for: 'new-user-owner' }, 'Owner'))),
    h('button', { type: 'submit', class: 'button button-primary' }, 'Create user'),
  );
  void refresh();
  return section('users', 'Users', 'People who may sign in. Owners manage users and projects and are admins of every project; everyone else sees the projects they are a member of.', form, result, errors, list);
}

export async function settingsPage(main: HTMLElement, route: Route): Promise<void> {
  const user = signedInUser()!;
  const owner = isOwner();
  const projectsList = h('div', null, loading());
  const projects = (await api.projects(route.signal)).items;
  const keys = keysSection();
  const administered = (items: ProjectView[]) => items.filter((p) => may(p.name, 'keys.manage'));
  const users = owner ? (await accessApi.users(route.signal)).items : null;
  const usersSlot = h('div', null);
  const paintOwnerSections = async () => {
    if (!owner) return;
    try {
      const fresh = (await accessApi.users(route.signal)).items;
      replace(usersSlot, sessionsSection(user.email, fresh), allTokensSection(fresh, projects));
    } catch (err) {
      if (!route.signal.aborted) replace(usersSlot, errorNotice(err));
    }
  };
  replace(
    main,
    pageTitle('Settings'),
    h('p', { class: 'muted' }, `Signed in as ${user.email}${owner ? ' (owner)' : ''}.`),
    h(
      'div',
      { class: 'settings' },
      tokensSection(projects),
      owner ? usersSlot : sessionsSection(user.email, null),
      owner ? projectsSection(projectsList, () => void paintProjects()) : null,
      owner || administered(projects).length ? keys.el : null,
      owner ? usersSection(() => void paintOwnerSections()) : null,
    ),
  );
  if (owner && users) replace(usersSlot, sessionsSection(user.email, users), allTokensSection(users, projects));
  async function paintProjects(): Promise<void> {
    try {
      const { items } = await api.projects(route.signal);
      replace(projectsList, projectList(items));
      keys.setProjects(administered(items));
      void loadRoles();
    } catch (err) {
      if (!route.signal.aborted) replace(projectsList, errorNotice(err));
    }
  }
  await paintProjects();
}
