/**
 * Notifications: the channels of one project (or the server-wide ones), a form to create one
 * (admins; a webhook's signing secret is shown once), "Send a test" with its outcome, and each
 * channel's deliveries with every attempt (time, HTTP status, error).
 */
import type { ProjectView } from '../../shared/api.js';
import type { ChannelView, CreatedChannelView, DeliveryView, TestChannelView } from '../../shared/notificationsApi.js';
import { api, request } from '../api.js';
import { h, replace } from '../dom.js';
import { timeEl } from '../format.js';
import { replaceQuery, type Route } from '../router.js';
import { isOwner, may } from '../session.js';
import { button, dataTable, errorNotice, field, loading, notice, pageTitle, secretOnce } from '../ui.js';

const KINDS = ['failure', 'success', 'recovery', 'slow', 'runner', 'missed', 'health', 'shell', 'approval'];
const DEFAULT_ON = ['failure', 'recovery', 'runner', 'missed', 'health', 'shell', 'approval'];
const enc = encodeURIComponent;

const channelsApi = {
  list: (project: string | null, signal?: AbortSignal) =>
    request<{ items: ChannelView[] }>('GET', project ? `/api/v1/channels?project=${enc(project)}` : '/api/v1/channels?scope=server', undefined, signal),
  create: (body: Record<string, unknown>) => request<CreatedChannelView>('POST', '/api/v1/channels', body),
  test: (id: string) => request<TestChannelView>('POST', `/api/v1/channels/${enc(id)}/test`, { wait: 20 }),
  remove: (id: string) => request<ChannelView>('DELETE', `/api/v1/channels/${enc(id)}`),
  deliveries: (id: string) => request<{ items: DeliveryView[] }>('GET', `/api/v1/channels/${enc(id)}/deliveries?limit=50`),
};

const statusBadge = (status: string) => {
  const look = status === 'delivered' ? 'badge-ok' : status === 'failed' ? 'outcome-failed' : status === 'cancelled' || status === 'digested' ? 'badge-off' : 'badge-refused';
  return h('span', { class: `badge ${look}`, 'data-status': status }, status);
};

function hears(c: ChannelView): string {
  const extra = [c.commands ? `commands ${c.commands}` : '', c.slow_after ? `slow after ${c.slow_after} s` : ''].filter(Boolean);
  return c.on.join(', ') + (extra.length ? ` (${extra.join('; ')})` : '');
}

function attemptText(d: DeliveryView): string {
  const a = d.attempts.at(-1);
  if (!a) return 'no attempt yet';
  return a.ok ? `delivered${a.status_code ? ` (HTTP ${a.status_code})` : ''} in ${a.duration_ms} ms` : `failed: ${a.error ?? `HTTP ${a.status_code}`}`;
}

function deliveriesPanel(c: ChannelView, items: DeliveryView[]): HTMLElement {
  if (!items.length) return h('p', { class: 'muted' }, `${c.name}: no delivery yet.`);
  const rows = items.map((d) =>
    h(
      'tr',
      null,
      h('td', null, timeEl(d.created_at)),
      h('td', null, d.summary),
      h('td', null, statusBadge(d.status), d.next_attempt_at ? h('span', { class: 'muted small' }, ' next try ', timeEl(d.next_attempt_at)) : null),
      h(
        'td',
        null,
        d.attempts.length
          ? h(
              'ol',
              { class: 'plain-list small' },
              d.attempts.map((a) =>
                h('li', null, timeEl(a.at), ` · ${a.ok ? 'ok' : 'failed'}${a.status_code !== null ? ` · HTTP ${a.status_code}` : ''} · ${a.duration_ms} ms`, a.error ? h('span', { class: 'mono' }, ` · ${a.error}`) : null),
              ),
            )
          : h('span', { class: 'muted' }, '—'),
      ),
    ),
  );
  return h('div', null, h('h3', null, `Deliveries of ${c.name}`), dataTable({ 'data-testid': 'deliveries-table' }, ['Created', 'Message', 'Status', 'Attempts'], rows));
}

function createSection(project: string | null, onCreated: () => void): HTMLElement {
  const kind = h('select', { name: 'kind' }, h('option', { value: 'slack' }, 'Slack (also Mattermost, Discord /slack)'), h('option', { value: 'webhook' }, 'Webhook (signed JSON)'), h('option', { value: 'email' }, 'Email'));
  const name = h('input', { type: 'text', name: 'name', autocomplete: 'off', placeholder: 'e.g. #ops alerts' });
  const url = h('input', { type: 'url', name: 'url', autocomplete: 'off', spellcheck: 'false', placeholder: 'https://hooks.slack.com/services/…' });
  const to = h('input', { type: 'text', name: 'to', autocomplete: 'off', placeholder: 'ops@example.com, dev@example.com' });
  const secret = h('input', { type: 'text', name: 'secret', autocomplete: 'off', spellcheck: 'false', placeholder: 'leave empty to generate one' });
  const commands = h('input', { type: 'text', name: 'commands', autocomplete: 'off', placeholder: 'e.g. migrate,clear*' });
  const slow = h('input', { type: 'number', name: 'slow_after', min: '1', max: '604800', inputmode: 'numeric' });
  const boxes = KINDS.map((k) => h('input', { type: 'checkbox', name: 'on', value: k, id: `on-${k}`, checked: DEFAULT_ON.includes(k) }));
  const urlField = field('URL', url, { help: 'Shown once: lists show only its host.' });
  const toField = field('Recipients', to);
  const secretField = field('Signing secret', secret, { help: 'Receivers check X-DjangoCommand-Signature with it.' });
  const smtpField = field('SMTP server (optional)', h('input', { type: 'text', name: 'smtp', autocomplete: 'off', placeholder: 'default: the server’s DJANGOCOMMAND_SMTP_URL' }));
  const result = h('div', { 'aria-live': 'polite' });
  const paint = () => {
    const email = kind.value === 'email';
    urlField.el.hidden = email;
    toField.el.hidden = !email;
    smtpField.el.hidden = !email;
    secretField.el.hidden = kind.value !== 'webhook';
  };
  kind.addEventListener('change', paint);
  paint();
  const submit = h('button', { type: 'submit', class: 'button button-primary' }, 'Create channel');
  const form = h(
    'form',
    {
      'data-testid': 'channel-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        submit.disabled = true;
        const email = kind.value === 'email';
        const smtp = (smtpField.el.querySelector('input') as HTMLInputElement).value.trim();
        const body: Record<string, unknown> = {
          project,
          kind: kind.value,
          on: boxes.filter((b) => b.checked).map((b) => b.value),
          ...(name.value.trim() ? { name: name.value.trim() } : {}),
          ...(email ? { to: to.value.split(',').map((s) => s.trim()).filter(Boolean), ...(smtp ? { url: smtp } : {}) } : { url: url.value.trim() }),
          ...(kind.value === 'webhook' && secret.value ? { secret: secret.value } : {}),
          ...(commands.value.trim() ? { commands: commands.value.trim() } : {}),
          ...(slow.value ? { slow_after: Number(slow.value) } : {}),
        };
        try {
          const c = await channelsApi.create(body);
          replace(result, c.secret ? secretOnce(`Signing secret of ${c.name}`, c.secret, 'Give it to the receiver; it checks every request with it.') : notice('success', `Channel ${c.name} created. Send a test to check it.`));
          for (const input of [name, url, to, secret, commands, slow]) input.value = '';
          onCreated();
        } catch (err) {
          replace(result, errorNotice(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h('div', { class: 'inline-form' }, field('Kind', kind).el, field('Name', name).el, urlField.el, toField.el, smtpField.el, secretField.el),
    h('fieldset', { class: 'inline-form' }, h('legend', null, 'Tell about'), boxes.map((b) => h('div', { class: 'field field-check' }, h('div', { class: 'check' }, b, h('label', { for: b.id }, b.value))))),
    h('div', { class: 'inline-form' }, field('Only commands', commands).el, field('Slow after (seconds)', slow, { help: 'Runs longer than this are reported.' }).el, submit),
  );
  return h('section', { class: 'card settings-section', id: 'new-channel', 'aria-labelledby': 'new-channel-title' }, h('h2', { id: 'new-channel-title', class: 'card-title' }, 'New channel'), form, result);
}

export async function notificationsPage(main: HTMLElement, route: Route): Promise<void> {
  const select = h('select', { name: 'scope' });
  const list = h('div', null, loading());
  const outcome = h('div', { 'aria-live': 'polite', 'data-testid': 'channel-outcome' });
  const panel = h('div', { 'aria-live': 'polite' });
  const createSlot = h('div', null);
  const project = () => select.value || null;
  // A project's channels are its admins'; server-wide ones are the owners'.
  const admin = () => (project() ? may(project()!, 'channels.manage') : isOwner());

  const showDeliveries = async (c: ChannelView) => {
    replace(panel, loading());
    try {
      replace(panel, deliveriesPanel(c, (await channelsApi.deliveries(c.id)).items));
    } catch (err) {
      replace(panel, errorNotice(err));
    }
  };

  const refresh = async () => {
    try {
      const { items } = await channelsApi.list(project(), route.signal);
      if (!items.length) return replace(list, h('p', { class: 'muted' }, project() ? `No channel for ${project()} yet.` : 'No server-wide channel yet.'));
      const rows = items.map((c) =>
        h(
          'tr',
          { 'data-channel': c.id },
          h('td', null, h('strong', null, c.name), h('div', { class: 'muted small' }, c.kind)),
          h('td', { class: 'mono' }, c.target),
          h('td', null, hears(c)),
          h('td', null, c.last_delivery ? h('span', null, statusBadge(c.last_delivery.status), ' ', timeEl(c.last_delivery.at, true)) : h('span', { class: 'muted' }, 'none yet')),
          h(
            'td',
            { class: 'cell-actions' },
            admin()
              ? button('Send a test', async (e) => {
                  const b = e.currentTarget as HTMLButtonElement;
                  b.disabled = true;
                  replace(outcome, loading(`Sending a test to ${c.name}…`));
                  try {
                    const r = await channelsApi.test(c.id);
                    const ok = r.delivery?.attempts.at(-1)?.ok === true;
                    replace(outcome, r.delivery ? notice(ok ? 'success' : 'error', `Test to ${c.name}: ${attemptText(r.delivery)}.`) : notice('info', `Test to ${c.name} queued; no attempt yet.`));
                    void refresh();
                    void showDeliveries(c);
                  } catch (err) {
                    replace(outcome, errorNotice(err));
                  } finally {
                    b.disabled = false;
                  }
                }, { testid: 'send-test' })
              : null,
            button('Deliveries', () => void showDeliveries(c), { kind: 'plain' }),
            admin()
              ? button('Delete', async () => {
                  if (!window.confirm(`Delete the channel "${c.name}"? What it has not sent yet is dropped.`)) return;
                  try {
                    await channelsApi.remove(c.id);
                    panel.replaceChildren();
                    void refresh();
                  } catch (err) {
                    replace(outcome, errorNotice(err));
                  }
                }, { kind: 'danger' })
              : null,
          ),
        ),
      );
      replace(list, dataTable({ 'data-testid': 'channels-table' }, ['Channel', 'Sends to', 'Tells about', 'Last delivery', ''], rows));
    } catch (err) {
      if (!route.signal.aborted) replace(list, errorNotice(err));
    }
  };

  const scopeChanged = () => {
    replaceQuery('/notifications', { project: project() });
    outcome.replaceChildren();
    panel.replaceChildren();
    replace(createSlot, admin() ? createSection(project(), () => void refresh()) : null);
    void refresh();
  };
  select.addEventListener('change', scopeChanged);

  replace(
    main,
    pageTitle('Notifications'),
    h('p', { class: 'muted' }, 'Where the team hears of failures, recoveries, slow runs, runners going offline and missed schedules. Messages are kept and retried for a day; more than 10 in a minute to one channel become one digest.'),
    h('div', { class: 'inline-form' }, field('Channels of', select).el),
    outcome,
    list,
    panel,
    createSlot,
  );
  const projects: ProjectView[] = (await api.projects(route.signal)).items;
  const wanted = route.query.get('project') ?? '';
  // Server-wide channels are the owners' only: others pick one of their projects.
  if (!isOwner() && !projects.length) return replace(list, h('p', { class: 'muted' }, 'You are not a member of any project yet.'));
  select.replaceChildren(...(isOwner() ? [h('option', { value: '' }, 'All projects (server-wide)')] : []), ...projects.map((p) => h('option', { value: p.name, selected: p.name === wanted }, p.name)));
  scopeChanged();
}
