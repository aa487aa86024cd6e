/**
 * A command's settings on its catalogue page. A project admin (commands.manage) gets a form:
 * the current values come from GET .../commands/NAME/settings, Save sends PUT with only the
 * fields that changed, and the server's DC_ error is shown next to the form. Everyone else who
 * may see the command reads the same values as a short list. The server still decides.
 */
import { APPROVER_ROLES, MAX_APPROVAL_EXPIRY_SECONDS, MAX_CONCURRENCY, MAX_DEFAULT_TIMEOUT_SECONDS, MAX_PATTERN_CHARS } from '../domain/commandSettings.js';
import type { CommandSettingsView, UpdateCommandSettingsRequest } from '../shared/commandSettingsApi.js';
import { ApiError, request } from './api.js';
import { h, replace, uid } from './dom.js';
import { timeEl } from './format.js';
import { may } from './session.js';
import { errorMessage, errorNotice, field, loading, notice, setFieldError } from './ui.js';

const enc = encodeURIComponent;
type Editable = Required<UpdateCommandSettingsRequest>;
type Key = keyof Editable;

const settingsPath = (project: string, command: string) => `/api/v1/projects/${enc(project)}/commands/${enc(command)}/settings`;

function seconds(n: number | null, none: string): string {
  return n === null ? none : `${n} s`;
}

/** The read-only list viewers and operators see. */
function settingsList(s: CommandSettingsView): HTMLElement {
  const row = (label: string, value: string) => [h('dt', null, label), h('dd', null, value)];
  return h(
    'dl',
    { class: 'meta', 'data-testid': 'command-settings-list' },
    row('Requires approval', s.requires_approval ? (s.approval_pattern ? `when the arguments match ${s.approval_pattern}` : 'every run') : 'no'),
    s.requires_approval ? row('Approved by', s.approver_role === 'admin' ? 'a project admin' : 'an operator or admin') : null,
    s.requires_approval ? row('Request expires after', seconds(s.approval_expiry_seconds, '')) : null,
    row('Default timeout', seconds(s.default_timeout_seconds, 'server default')),
    row('Runs at once', s.max_concurrency === null ? 'server default' : String(s.max_concurrency)),
    row('Read-only by default', s.read_only_default ? 'yes' : 'no'),
    row('Output kept', s.metadata_only ? 'no (metadata only)' : 'yes'),
  );
}

function checkbox(label: string, help: string, checked: boolean, testid: string): { el: HTMLElement; box: HTMLInputElement } {
  const id = uid('setting');
  const box = h('input', { type: 'checkbox', id, checked, 'data-testid': testid });
  return { el: h('div', { class: 'field field-checkbox' }, h('label', { for: id }, box, ' ', label), h('p', { class: 'muted small' }, help)), box };
}

function numberInput(value: number | null, min: number, max: number, placeholder: string, testid: string): HTMLInputElement {
  return h('input', { type: 'number', min: String(min), max: String(max), step: '1', inputmode: 'numeric', class: 'input-number', placeholder, value: value === null ? '' : String(value), 'data-testid': testid });
}

function settingsForm(project: string, command: string, loaded: CommandSettingsView): HTMLElement {
  let current = loaded;
  const requiresApproval = checkbox('Requires approval', 'Runs wait until another member approves them (four-eyes).', current.requires_approval, 'setting-requires-approval');
  const pattern = h('input', { type: 'text', class: 'mono', maxlength: String(MAX_PATTERN_CHARS), spellcheck: 'false', autocomplete: 'off', placeholder: 'every run', value: current.approval_pattern ?? '', 'data-testid': 'setting-approval-pattern' });
  const approverRole = h('select', { 'data-testid': 'setting-approver-role' }, APPROVER_ROLES.map((r) => h('option', { value: r }, r === 'admin' ? 'a project admin' : 'an operator or admin')));
  approverRole.value = current.approver_role;
  const expiry = numberInput(current.approval_expiry_seconds, 60, MAX_APPROVAL_EXPIRY_SECONDS, '86400', 'setting-approval-expiry');
  const timeout = numberInput(current.default_timeout_seconds, 1, MAX_DEFAULT_TIMEOUT_SECONDS, 'server default', 'setting-default-timeout');
  const concurrency = numberInput(current.max_concurrency, 1, MAX_CONCURRENCY, 'server default', 'setting-max-concurrency');
  const readOnly = checkbox('Read-only by default', 'Every run is in read-only database mode.', current.read_only_default, 'setting-read-only-default');
  const metadataOnly = checkbox('Metadata only', 'The output of its runs is not kept.', current.metadata_only, 'setting-metadata-only');

  const fPattern = field('Approval pattern (regular expression)', pattern, { help: 'Only runs whose arguments (joined as shell words) match need approval; empty: every run.' });
  const fRole = field('Who approves', approverRole);
  const fExpiry = field('Request expires after (seconds)', expiry, { help: `From 60 to ${MAX_APPROVAL_EXPIRY_SECONDS}; an unanswered request is then rejected.` });
  const fTimeout = field('Default timeout (seconds)', timeout, { help: 'For runs that name none; empty: the server\u2019s default.' });
  const fConcurrency = field('Runs at once', concurrency, { help: 'Active runs allowed at the same time; empty: the server\u2019s default.' });
  const fieldErrors: Partial<Record<Key, { control: HTMLElement; error: HTMLElement }>> = {
    approval_pattern: { control: pattern, error: fPattern.error },
    approver_role: { control: approverRole, error: fRole.error },
    approval_expiry_seconds: { control: expiry, error: fExpiry.error },
    default_timeout_seconds: { control: timeout, error: fTimeout.error },
    max_concurrency: { control: concurrency, error: fConcurrency.error },
  };
  const clearErrors = () => Object.values(fieldErrors).forEach((f) => f && setFieldError(f.control, f.error, null));
  const approvalFields = h('div', { class: 'subform' }, fPattern.el, fRole.el, fExpiry.el);
  const paintApproval = () => (approvalFields.hidden = !requiresApproval.box.checked);
  requiresApproval.box.addEventListener('change', paintApproval);
  paintApproval();

  /** A whole number in range, null when empty (if allowed); a string is the problem. */
  const whole = (el: HTMLInputElement, min: number, max: number, nullable: boolean): number | null | string => {
    const text = el.value.trim();
    if (text === '') return nullable ? null : `A whole number from ${min} to ${max}.`;
    const n = Number(text);
    return Number.isInteger(n) && n >= min && n <= max ? n : `A whole number from ${min} to ${max}.`;
  };

  const result = h('div', { 'aria-live': 'polite', 'data-testid': 'command-settings-result' });
  const save = h('button', { type: 'submit', class: 'button button-primary', 'data-testid': 'command-settings-save' }, 'Save settings');
  const form = h(
    'form',
    {
      class: 'command-settings-form',
      novalidate: true,
      'aria-label': `Settings of ${command}`,
      'data-testid': 'command-settings-form',
      onSubmit: async (e: SubmitEvent) => {
        e.preventDefault();
        replace(result);
        clearErrors();
        const wanted: Editable = {
          metadata_only: metadataOnly.box.checked,
          default_timeout_seconds: null,
          max_concurrency: null,
          read_only_default: readOnly.box.checked,
          requires_approval: requiresApproval.box.checked,
          approval_pattern: pattern.value.trim() === '' ? null : pattern.value.trim(),
          approver_role: approverRole.value as Editable['approver_role'],
          approval_expiry_seconds: 0,
        };
        const numbers: Array<[Key, HTMLInputElement, number, number, boolean]> = [
          ['default_timeout_seconds', timeout, 1, MAX_DEFAULT_TIMEOUT_SECONDS, true],
          ['max_concurrency', concurrency, 1, MAX_CONCURRENCY, true],
          ['approval_expiry_seconds', expiry, 60, MAX_APPROVAL_EXPIRY_SECONDS, false],
        ];
        let bad: HTMLElement | null = null;
        for (const [key, el, min, max, nullable] of numbers) {
          const v = whole(el, min, max, nullable);
          if (typeof v === 'string') {
            setFieldError(el, fieldErrors[key]!.error, v);
            bad ??= el;
          } else (wanted as Record<Key, unknown>)[key] = v;
        }
        if (bad) {
          if (bad === expiry) approvalFields.hidden = false;
          bad.focus();
          return;
        }
        // Only what changed: the others stay as they are on the server (someone may be editing them too).
        const body: UpdateCommandSettingsRequest = {};
        for (const key of Object.keys(wanted) as Key[]) if (wanted[key] !== current[key]) (body as Record<Key, unknown>)[key] = wanted[key];
        if (Object.keys(body).length === 0) {
          replace(result, notice('info', 'Nothing changed.'));
          return;
        }
        save.disabled = true;
        try {
          current = await request<CommandSettingsView>('PUT', settingsPath(project, command), body);
          replace(result, notice('success', `Saved: ${Object.keys(body).join(', ')}.`));
        } catch (err) {
          const f = err instanceof ApiError ? (err.details.field as Key | undefined) : undefined;
          const place = f ? fieldErrors[f] : undefined;
          if (place) setFieldError(place.control, place.error, errorMessage(err));
          replace(result, errorNotice(err));
        } finally {
          save.disabled = false;
        }
      },
    },
    requiresApproval.el,
    approvalFields,
    fTimeout.el,
    fConcurrency.el,
    readOnly.el,
    metadataOnly.el,
    result,
    h('div', { class: 'form-actions' }, save),
  );
  return form;
}

/** The settings section of command `command` in `project`: a form for its admins, a list for the others. */
export function commandSettingsPanel(project: string, command: string, signal?: AbortSignal): HTMLElement {
  const body = h('div', null, loading('Loading the settings…'));
  const updated = h('p', { class: 'muted small' });
  void request<CommandSettingsView>('GET', settingsPath(project, command), undefined, signal).then(
    (s) => {
      if (s.updated_at) updated.replaceChildren('Last changed by ', s.updated_by ?? 'someone', ' ', timeEl(s.updated_at), '.');
      replace(body, may(project, 'commands.manage') ? settingsForm(project, command, s) : settingsList(s));
    },
    (err) => {
      if (!signal?.aborted) replace(body, errorNotice(err));
    },
  );
  return h('section', { class: 'command-settings', 'aria-label': `Settings of ${command}`, 'data-testid': 'command-settings' }, h('h2', null, 'Settings'), updated, body);
}
