/**
 * The four-eyes panel of the run view: while an execution waits for approval, who asked, until
 * when, and Approve / Deny with a comment. Everyone who may see the run sees the buttons; the
 * server decides who may press them (not the requester, nor a viewer or a CI token) and its
 * DC_ error is shown as it comes.
 */
import type { ExecutionView } from '../shared/api.js';
import type { ApprovalView } from '../shared/commandSettingsApi.js';
import { request } from './api.js';
import { h } from './dom.js';
import { timeEl } from './format.js';
import { errorNotice, notice } from './ui.js';

const enc = encodeURIComponent;

/** The panel for execution `id`; `decided` receives the execution after a decision. */
export function approvalPanel(id: string, signal: AbortSignal, decided: (e: ExecutionView) => void): HTMLElement {
  const who = h('p', { class: 'small', 'data-testid': 'approval-request' }, 'Loading the request…');
  const comment = h('textarea', { class: 'input', rows: '2', cols: '60', maxlength: '2000', placeholder: 'Comment (kept in the audit log)', 'aria-label': 'Comment', 'data-testid': 'approval-comment' }) as HTMLTextAreaElement;
  const approve = h('button', { type: 'button', class: 'button button-primary', 'data-testid': 'approve' }, 'Approve');
  const deny = h('button', { type: 'button', class: 'button button-danger', 'data-testid': 'deny' }, 'Deny');
  const error = h('div', { 'aria-live': 'assertive', 'data-testid': 'approval-error' });
  void request<ApprovalView>('GET', `/api/v1/executions/${enc(id)}/approval`, undefined, signal).then(
    (a) => who.replaceChildren(`Asked by ${a.requested_by} `, timeEl(a.requested_at), `; it expires `, timeEl(a.expires_at), `. Needs ${a.approver_role === 'admin' ? 'a project admin' : 'an operator or admin'} other than the requester.`),
    (err) => who.replaceChildren(errorNotice(err)),
  );
  const act = async (verb: 'approve' | 'deny') => {
    error.replaceChildren();
    approve.disabled = deny.disabled = true;
    try {
      const text = comment.value.trim();
      decided(await request<ExecutionView>('POST', `/api/v1/executions/${enc(id)}/${verb}`, text ? { comment: text } : {}));
    } catch (err) {
      error.replaceChildren(errorNotice(err));
      approve.disabled = deny.disabled = false;
    }
  };
  approve.addEventListener('click', () => void act('approve'));
  deny.addEventListener('click', () => void act('deny'));
  return h(
    'section',
    { class: 'approval-panel', 'data-testid': 'approval-panel' },
    notice('warning', h('strong', null, 'Awaiting approval'), ': this run starts only once another member approves it (four-eyes).'),
    who,
    comment,
    h('div', { class: 'run-actions' }, approve, deny),
    error,
  );
}
