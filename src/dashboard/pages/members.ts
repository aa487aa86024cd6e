/**
 * A project's members and CI tokens (`#/projects/shop/members`). Every member sees who else is
 * one; project admins add people, change their role, remove them, and make or revoke CI tokens
 * (a CI token has one role in this project and no person behind it; its secret is shown once).
 */
import { PROJECT_ROLES, type ProjectRole } from '../../domain/roles.js';
import { accessApi, type CiTokenView, type MemberView } from '../accessApi.js';
import { h, replace } from '../dom.js';
import { expiryField, expiryText } from '../expiryField.js';
import { timeEl } from '../format.js';
import { href, projectPath, type Route } from '../router.js';
import { may, roleIn, signedInUser } from '../session.js';
import { button, dataTable, errorNotice, field, loading, notice, pageTitle, secretOnce } from '../ui.js';

const ROLE_HELP: Record<ProjectRole, string> = {
  viewer: 'sees executions, output, schedules',
  operator: 'also runs allowed commands, cancels, opens read-only shells',
  admin: 'also runner keys, schedules, channels, command settings, members, writable shells',
};

function roleSelect(value: ProjectRole, attrs: Record<string, string> = {}): HTMLSelectElement {
  return h('select', { name: 'role', ...attrs }, PROJECT_ROLES.map((r) => h('option', { value: r, selected: r === value, title: ROLE_HELP[r] }, r)));
}

function section(id: string, title: string, intro: string, ...content: Array<HTMLElement | null>): HTMLElement {
  return h('section', { class: 'card settings-section', id, 'aria-labelledby': `${id}-title` }, h('h2', { id: `${id}-title`, class: 'card-title' }, title), h('p', { class: 'muted small' }, intro), ...content);
}

function membersSection(project: string, admin: boolean, signal: AbortSignal): HTMLElement {
  const list = h('div', null, loading());
  const result = h('div', { 'aria-live': 'polite' });
  const me = signedInUser()?.email;
  const refresh = async () => {
    try {
      const { items } = await accessApi.members(project, signal);
      if (!items.length) return replace(list, h('p', { class: 'muted' }, 'No member yet: only owners see this project.'));
      replace(list, h('div', { class: 'table-wrap' }, dataTable({ 'data-testid': 'members-table' }, ['Email', 'Role', ''], items.map(row))));
    } catch (err) {
      if (!signal.aborted) replace(list, errorNotice(err));
    }
  };
  const row = (m: MemberView): HTMLTableRowElement => {
    const name = [m.email, m.email === me ? ' (you)' : '', m.disabled ? ' ' : ''];
    const state = m.disabled ? h('span', { class: 'badge badge-off' }, 'disabled') : null;
    const since = h('div', { class: 'muted small' }, 'since ', timeEl(m.since));
    if (!admin) return h('tr', { 'data-member': m.email }, h('td', null, name, state, since), h('td', null, m.role), h('td', null));
    const select = roleSelect(m.role, { 'aria-label': `Role of ${m.email}` });
    select.addEventListener('change', async () => {
      try {
        await accessApi.setMember(project, m.email, select.value as ProjectRole);
        replace(result, notice('success', `${m.email} is now ${select.value} of ${project}.`));
      } catch (err) {
        select.value = m.role;
        replace(result, errorNotice(err));
      }
      void refresh();
    });
    const remove = button('Remove', async () => {
      if (!window.confirm(`Remove ${m.email} from ${project}? They stop seeing it at once; their past runs stay attributed to them.`)) return;
      try {
        await accessApi.removeMember(project, m.email);
        replace(result, notice('success', `${m.email} is no longer a member of ${project}.`));
      } catch (err) {
        replace(result, errorNotice(err));
      }
      void refresh();
    }, { kind: 'danger' });
    return h('tr', { 'data-member': m.email }, h('td', null, name, state, since), h('td', null, select), h('td', { class: 'cell-actions' }, remove));
  };

  let form: HTMLElement | null = null;
  if (admin) {
    const email = h('input', { type: 'email', name: 'email', required: true, autocomplete: 'off', placeholder: 'name@example.com' });
    const role = roleSelect('viewer', { 'data-testid': 'new-member-role' });
    const emailField = field('Email', email);
    form = h(
      'form',
      {
        class: 'inline-form',
        'data-testid': 'add-member',
        onSubmit: async (e: SubmitEvent) => {
          e.preventDefault();
          if (!email.value.trim()) {
            emailField.error.textContent = 'Give the email of someone who has an account here.';
            return email.focus();
          }
          emailField.error.textContent = '';
          try {
            const r = await accessApi.setMember(project, email.value.trim(), role.value as ProjectRole);
            replace(result, notice('success', `${r.user.email} is ${r.added ? 'now' : 'already a member, now'} ${r.role} of ${project}.`));
            email.value = '';
            void refresh();
          } catch (err) {
            replace(result, errorNotice(err));
          }
        },
      },
      emailField.el,
      field('Role', role).el,
      h('button', { type: 'submit', class: 'button button-primary' }, 'Add member'),
    );
  }
  void refresh();
  return section(
    'members',
    'Members',
    `Who sees ${project}, and with which role: a viewer ${ROLE_HELP.viewer}; an operator ${ROLE_HELP.operator}; an admin ${ROLE_HELP.admin}. Owners (server-wide) see every project as admins.`,
    form,
    result,
    list,
  );
}

function ciTokensSection(project: string, signal: AbortSignal): HTMLElement {
  const list = h('div', null, loading());
  const result = h('div', { 'aria-live': 'polite' });
  const refresh = async () => {
    try {
      const { items } = await accessApi.ciTokens(project, signal);
      if (!items.length) return replace(list, h('p', { class: 'muted' }, 'No CI token.'));
      replace(list, h('div', { class: 'table-wrap' }, dataTable({ 'data-testid': 'ci-tokens-table' }, ['Name', 'Role', 'Expires', 'Last used', ''], items.map(row))));
    } catch (err) {
      if (!signal.aborted) replace(list, errorNotice(err));
    }
  };
  const row = (t: CiTokenView): HTMLTableRowElement =>
    h(
      'tr',
      { 'data-ci-token': t.name },
      h('td', null, t.name, h('div', { class: 'muted small mono' }, `${t.prefix}…`), h('div', { class: 'muted small' }, `by ${t.created_by} `, timeEl(t.created_at))),
      h('td', null, t.role),
      h('td', null, expiryText(t.expires_at)),
      h('td', null, t.last_used_at ? timeEl(t.last_used_at, true) : 'never'),
      h(
        'td',
        { class: 'cell-actions' },
        t.revoked_at
          ? h('span', { class: 'badge badge-off' }, 'revoked')
          : button('Revoke', async () => {
              if (!window.confirm(`Revoke the CI token "${t.name}" of ${project}? Whatever uses it stops working at once.`)) return;
              try {
                await accessApi.revokeCiToken(project, t.id);
              } catch (err) {
                replace(result, errorNotice(err));
              }
              void refresh();
            }, { kind: 'danger' }),
      ),
    );
  const name = h('input', { type: 'text', name: 'ci-token-name', required: true, autocomplete: 'off', placeholder: 'e.g. deploy pipeline', 'data-testid': 'ci-token-name' });
  const nameField = field('Token name', name);
  const role = roleSelect('operator', { 'data-testid': 'ci-token-role' });
  const expiry = expiryField();
  const form = h(
    'form',
    {
      class: 'inline-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        if (!name.value.trim()) {
          nameField.error.textContent = 'Give the token a name (what uses it).';
          return name.focus();
        }
        nameField.error.textContent = '';
        const expiresAt = expiry.read();
        if (expiresAt === undefined) return;
        try {
          const t = await accessApi.createCiToken(project, { name: name.value.trim(), role: role.value as ProjectRole, expires_at: expiresAt });
          replace(result, secretOnce(`CI token "${t.name}" (${t.role} of ${project})`, t.token, 'Store it in your CI\u2019s secrets as DJANGOCOMMAND_TOKEN.'));
          name.value = '';
          expiry.reset();
          void refresh();
        } catch (err) {
          replace(result, errorNotice(err));
        }
      },
    },
    nameField.el,
    field('Role', role).el,
    expiry.el,
    h('button', { type: 'submit', class: 'button button-primary' }, 'Create CI token'),
  );
  void refresh();
  return section('ci-tokens', 'CI tokens', `For pipelines: a token with one role in ${project} and no person behind it. It is shown once; store it in a secret manager.`, form, result, list);
}

export async function membersPage(main: HTMLElement, route: Route): Promise<void> {
  const { project } = route.params;
  const role = roleIn(project);
  const admin = may(project, 'members.manage');
  replace(
    main,
    h('p', { class: 'crumbs muted small' }, h('a', { href: '#/' }, 'Projects'), ' / ', h('a', { href: href(projectPath(project)) }, project), ' / Members'),
    pageTitle(`Members of ${project}`),
    role ? h('p', { class: 'muted', 'data-testid': 'my-role' }, `Your role in ${project}: ${role}.`) : null,
    h('div', { class: 'settings' }, membersSection(project, admin, route.signal), admin ? ciTokensSection(project, route.signal) : null),
  );
}
