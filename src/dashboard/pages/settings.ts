/**
 * Settings: projects (create: the runner key is shown once), runner keys (create, revoke),
 * personal API tokens (create: shown once; revoke) and, for admins, users.
 */
import type { ProjectView } from '../../shared/api.js';
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { timeEl } from '../format.js';
import type { Route } from '../router.js';
import { signedInUser } from '../session.js';
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

/** A "Revoke" button that asks first, then calls `revoke` and `done`; errors go to `errors`. */
function revokeButton(question: string, revoke: () => Promise<unknown>, done: () => void, errors: HTMLElement): HTMLElement {
  return button('Revoke', async () => {
    if (!window.confirm(question)) return;
    try {
      await revoke();
    } catch (err) {
      replace(errors, errorNotice(err));
      return;
    }
    done();
  }, { kind: 'danger' });
}

const revokedBadge = () => h('span', { class: 'badge badge-off' }, 'revoked');

function tokensSection(): HTMLElement {
  const list = h('div', null, loading());
  const errors = h('div', { 'aria-live': 'assertive' });
  const refresh = async () => {
    try {
      const { items } = await api.tokens();
      if (!items.length) return replace(list, h('p', { class: 'muted' }, 'You have no API token.'));
      const rows = items.map((t) =>
        h(
          'tr',
          null,
          h('td', null, t.name),
          h('td', { class: 'mono' }, `${t.prefix}…`),
          h('td', null, timeEl(t.created_at)),
          h('td', null, t.last_used_at ? timeEl(t.last_used_at, true) : 'never'),
          h(
            'td',
            { class: 'cell-actions' },
            t.revoked_at ? revokedBadge() : revokeButton(`Revoke the token "${t.name}"? Whatever uses it stops working at once.`, () => api.revokeToken(t.id), () => void refresh(), errors),
          ),
        ),
      );
      replace(list, errors, dataTable({ 'data-testid': 'tokens-table' }, ['Name', 'Prefix', 'Created', 'Last used', ''], rows));
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };
  const { form, result } = createForm('Token name', 'Create token', async (name) => {
    const t = await api.createToken(name);
    void refresh();
    return secretOnce(`API token "${t.name}"`, t.token, 'Use it as "Authorization: Bearer …" or DJANGOCOMMAND_TOKEN for the CLI.');
  }, { placeholder: 'e.g. CI deploys', testid: 'token-name' });
  void refresh();
  return section('tokens', 'Personal API tokens', 'For the CLI and CI: a token acts as you. It is shown once; store it in a secret manager.', form, result, list);
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

/** The runner keys of one project at a time; `setProjects` keeps the choice and what is shown. */
function keysSection(admin: boolean): { el: HTMLElement; setProjects: (projects: ProjectView[]) => void } {
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
            k.revoked_at
              ? revokedBadge()
              : admin
                ? revokeButton(`Revoke the runner key "${k.name}" of ${project}? Runners using it are cut off at once.`, () => api.revokeKey(project, k.id), () => void refresh(), result)
                : '',
          ),
        ),
      );
      replace(list, dataTable({ 'data-testid': 'keys-table' }, ['Name', 'Prefix', 'Created', ''], rows));
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
  create.hidden = !admin;
  const el = section(
    'keys',
    'Runner keys',
    'A runner authenticates with its project\u2019s key. Make one key per host, so that one can be revoked alone.',
    h('div', { class: 'inline-form' }, field('Project', select).el),
    create,
    result,
    list,
  );
  const setProjects = (projects: ProjectView[]) => {
    const chosen = select.value;
    select.replaceChildren(...projects.map((p) => h('option', { value: p.name, selected: p.name === chosen }, p.name)));
    create.hidden = !admin || projects.length === 0;
    if (select.value !== chosen || projects.length === 0) void refresh();
  };
  return { el, setProjects };
}

function usersSection(): HTMLElement {
  const list = h('div', null, loading());
  const refresh = async () => {
    try {
      const { items } = await api.users();
      replace(
        list,
        dataTable(
          { 'data-testid': 'users-table' },
          ['Email', 'Role', 'Created'],
          items.map((u) => h('tr', null, h('td', null, u.email), h('td', null, u.is_admin ? 'admin' : 'user'), h('td', null, timeEl(u.created_at)))),
        ),
      );
    } catch (err) {
      replace(list, errorNotice(err));
    }
  };
  const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off' });
  const password = h('input', { type: 'password', name: 'password', required: true, autocomplete: 'new-password', minlength: '12' });
  const admin = h('input', { type: 'checkbox', name: 'is_admin', id: 'new-user-admin' });
  const result = h('div', { 'aria-live': 'polite' });
  const form = h(
    'form',
    {
      class: 'inline-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        try {
          const u = await api.createUser(email.value.trim(), password.value, admin.checked);
          replace(result, notice('success', `${u.email} can now sign in${u.is_admin ? ' as an admin' : ''}. Tell them their password through a safe channel.`));
          email.value = '';
          password.value = '';
          admin.checked = false;
          void refresh();
        } catch (err) {
          replace(result, errorNotice(err));
        }
      },
    },
    field('Email', email).el,
    field('Password', password).el,
    h('div', { class: 'field field-check' }, h('div', { class: 'check' }, admin, h('label', { for: 'new-user-admin' }, 'Admin'))),
    h('button', { type: 'submit', class: 'button button-primary' }, 'Create user'),
  );
  void refresh();
  return section('users', 'Users', 'People who may sign in. Admins create projects, runner keys and users.', form, result, list);
}

export async function settingsPage(main: HTMLElement, route: Route): Promise<void> {
  const user = signedInUser()!;
  const projectsList = h('div', null, loading());
  const keys = keysSection(user.is_admin);
  replace(
    main,
    pageTitle('Settings'),
    h('p', { class: 'muted' }, `Signed in as ${user.email}${user.is_admin ? ' (admin)' : ''}.`),
    h(
      'div',
      { class: 'settings' },
      tokensSection(),
      user.is_admin ? projectsSection(projectsList, () => void paintProjects()) : null,
      keys.el,
      user.is_admin ? usersSection() : null,
    ),
  );
  async function paintProjects(): Promise<void> {
    try {
      const { items } = await api.projects(route.signal);
      replace(projectsList, projectList(items));
      keys.setProjects(items);
    } catch (err) {
      if (!route.signal.aborted) replace(projectsList, errorNotice(err));
    }
  }
  await paintProjects();
}
