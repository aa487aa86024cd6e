/**
 * Four-eyes approvals: an execution of a command whose settings require approval is made in
 * `awaiting_approval` with a request (domain/approval.ts); another member decides it.
 *
 * Who may decide: a person (never a CI token), with the approver role in the project (the
 * stricter of the role set when it was asked and today's), who is none of the people behind the
 * request. The people behind it are found by every path the request could have come from, when
 * it is made and again when it is decided:
 *  - the person signed in, or the owner of the personal token used;
 *  - for a CI token, the person who created it (they hold its secret);
 *  - for a schedule's run, whoever created or changed the schedule, and whoever pressed "run now";
 *  - anyone else the audit log shows acting on this execution before the decision.
 * An approval is bound to the project, command, exact arguments and database mode: their hash is
 * stored with the request and checked when the execution is queued. Every change of the
 * execution's status goes through executionState.transition, which also audits it.
 */
import type { Actor, Execution, Project } from '../domain/model.js';
import { createHash } from 'node:crypto';
import { bindingText, mayApproveAs, stricterRole, type ApprovalRequest } from '../domain/approval.js';
import type { CommandSettings } from '../domain/commandSettings.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit, auditEvent, SYSTEM_ACTOR } from './audit.js';
import { requireExecution, requireProject, requirePerson, roleOf, visibleFilter, type Principal } from './access.js';
import { transition } from './executionState.js';
import { raise } from './notify.js';
import { settingsFor } from './commandSettings.js';

const MAX_COMMENT_CHARS = 2000;
/** Audit events read per query when looking for the people behind a schedule. */
const AUDIT_PAGE = 500;
const MAX_AUDIT_PAGES = 20;
const EXPIRE_BATCH = 200;

/** The request an execution that needs approval is made with (written before the execution). */
export async function approvalRequest(core: Core, actor: Actor, e: Execution, settings: CommandSettings, startTimeoutSeconds: number): Promise<ApprovalRequest> {
  const now = core.now();
  const people = new Set([...(await actorPeople(core, e.projectId, actor.type, actor.id)), ...(e.scheduleId ? await schedulePeople(core, e.scheduleId) : [])]);
  return {
    executionId: e.id,
    projectId: e.projectId,
    command: e.command,
    bindingHash: bindingOf(e),
    requesterIds: [...people],
    requestedBy: actor.label,
    approverRole: settings.approverRole,
    startTimeoutSeconds,
    status: 'pending',
    createdAt: now,
    expiresAt: now + settings.approvalExpirySeconds * 1000,
    decidedAt: null,
    decidedById: null,
    decidedBy: null,
    comment: null,
  };
}

/** Once the executions are made: each request audited and sent to the project's channels. */
export async function announceRequests(core: Core, made: ReadonlyArray<{ actor: Actor; request: ApprovalRequest; execution: Execution }>): Promise<void> {
  if (made.length === 0) return;
  await core.store.appendAudits(
    made.map(({ actor, request, execution: e }) =>
      auditEvent(core, actor, {
        action: 'approval.request',
        projectId: e.projectId,
        executionId: e.id,
        details: { command: e.command, args: e.args, approver_role: request.approverRole, expires_at: new Date(request.expiresAt).toISOString() },
      }),
    ),
  );
  for (const { actor, request, execution: e } of made) {
    await raise(core, {
      type: 'approval.requested',
      projectId: e.projectId,
      executionId: e.id,
      scheduleId: e.scheduleId,
      details: {
        command: e.command,
        args: e.args,
        requested_by: actor.label,
        approver_role: request.approverRole,
        expires_at: new Date(request.expiresAt).toISOString(),
      },
    });
  }
}

export function approve(core: Core, p: Principal, executionId: string, comment?: string): Promise<Execution> {
  return decide(core, p, executionId, 'approve', comment);
}

export function deny(core: Core, p: Principal, executionId: string, comment?: string): Promise<Execution> {
  return decide(core, p, executionId, 'deny', comment);
}

async function decide(core: Core, p: Principal, executionId: string, verb: 'approve' | 'deny', rawComment: string | undefined): Promise<Execution> {
  const action = `approval.${verb}`;
  // Unknown or invisible: DC_UNKNOWN_EXECUTION; a viewer or a read-only token: DC_FORBIDDEN (audited).
  const e = await requireExecution(core, p, executionId, 'approve');
  const refuse = async (reason: string, err: UserError): Promise<never> => {
    await audit(core, p.actor, { action, projectId: e.projectId, executionId: e.id, outcome: 'denied', details: { command: e.command, reason } });
    throw err;
  };
  if (!p.user) await audit(core, p.actor, { action, projectId: e.projectId, executionId: e.id, outcome: 'denied', details: { command: e.command, reason: 'a CI token acts for no person' } });
  const person = requirePerson(p, `${verb} a four-eyes request`);
  const comment = checkComment(rawComment);
  const request = await core.store.approvals.get(e.id);
  if (!request || request.status !== 'pending' || e.status !== 'awaiting_approval') {
    const what =
      request?.status === 'expired'
        ? `its request expired at ${new Date(request.decidedAt ?? request.expiresAt).toISOString()}`
        : request && request.status !== 'pending'
          ? `its request was ${request.status}${request.decidedBy ? ` by ${request.decidedBy}` : ''}`
          : `it is ${e.status}`;
    throw new UserError('DC_NOT_AWAITING_APPROVAL', `Execution ${e.id} does not wait for approval: ${what}.`, { status: e.status });
  }
  const requesters = await requestersOf(core, request, e);
  if (requesters.has(person.id)) {
    await refuse(
      'requester',
      new UserError('DC_SELF_APPROVAL', `You are behind this request (${request.requestedBy}): another member must ${verb} it. To withdraw it, cancel the execution.`, { requested_by: request.requestedBy }),
    );
  }
  const settings = (await settingsFor(core, e.projectId, [e.command])).get(e.command)!;
  const needed = stricterRole(request.approverRole, settings.approverRole);
  const role = roleOf(p, e.projectId);
  if (!mayApproveAs(role, needed)) {
    const project = await core.store.getProject(e.projectId);
    await refuse(
      'approver role',
      new UserError('DC_FORBIDDEN', `Deciding on "${e.command}" needs the ${needed} role; your role in project ${project?.name ?? e.projectId} is ${role}.`, { permission: 'approve', role, needed }),
    );
  }
  const now = core.now();
  const decision = { decidedAt: now, decidedById: person.id, decidedBy: p.actor.label, comment };
  if (verb === 'deny') {
    const reason = `denied by ${p.actor.label}${comment ? `: ${comment}` : ''}`;
    const done = await transition(core, e.id, 'rejected', { statusReason: reason, finishedAt: now }, {
      from: ['awaiting_approval'],
      wakeProject: true,
      audit: { actor: p.actor, action, details: { command: e.command, args: e.args, comment } },
    });
    if (!done) return moved(core, e.id);
    await core.store.approvals.decide(e.id, { status: 'denied', ...decision });
    return done;
  }
  const hash = bindingOf(e);
  if (hash !== request.bindingHash) {
    // Nothing may change what runs once it was asked for; if the row was altered, it never runs.
    const reason = 'what it would run changed after approval was asked for; it will not run';
    await transition(core, e.id, 'rejected', { statusReason: reason, finishedAt: now }, {
      from: ['awaiting_approval'],
      wakeProject: true,
      audit: { actor: p.actor, action, outcome: 'denied', details: { command: e.command, args: e.args, reason: 'binding changed', requested_hash: request.bindingHash, found_hash: hash } },
    });
    await core.store.approvals.decide(e.id, { status: 'closed', ...decision, comment: 'binding changed' });
    throw new UserError('DC_APPROVAL_MISMATCH', `Execution ${e.id} no longer matches what was asked for approval (command, arguments, project or mode changed); it was rejected and will not run.`);
  }
  const done = await transition(core, e.id, 'queued', { startDeadline: now + request.startTimeoutSeconds * 1000 }, {
    from: ['awaiting_approval'],
    wakeProject: true,
    audit: { actor: p.actor, action, details: { command: e.command, args: e.args, comment, binding_hash: hash } },
  });
  if (!done) return moved(core, e.id);
  await core.store.approvals.decide(e.id, { status: 'approved', ...decision });
  return done;
}

/** Someone else decided (or cancelled) between our read and our write. */
async function moved(core: Core, id: string): Promise<never> {
  const now = await core.store.getExecution(id);
  throw new UserError('DC_NOT_AWAITING_APPROVAL', `Execution ${id} does not wait for approval any more: it is ${now?.status ?? 'gone'}.`, { status: now?.status });
}

function checkComment(c: string | undefined): string | null {
  if (c === undefined || c === null) return null;
  if (typeof c !== 'string') throw new UserError('DC_VALIDATION', 'comment must be text.', { field: 'comment' });
  const t = c.trim();
  if (t.length > MAX_COMMENT_CHARS) throw new UserError('DC_VALIDATION', `comment may be at most ${MAX_COMMENT_CHARS} characters.`, { field: 'comment' });
  return t === '' ? null : t;
}

function bindingOf(e: Execution): string {
  return createHash('sha256').update(bindingText({ projectId: e.projectId, command: e.command, argv: e.argv, args: e.args, readOnly: e.readOnly })).digest('hex');
}

/** The request of one execution, for someone who may see it. */
export async function getApproval(core: Core, p: Principal, executionId: string): Promise<{ request: ApprovalRequest; execution: Execution }> {
  const e = await requireExecution(core, p, executionId, 'view');
  const request = await core.store.approvals.get(e.id);
  if (!request) throw new UserError('DC_NOT_AWAITING_APPROVAL', `Execution ${e.id} never needed approval.`, { status: e.status });
  return { request, execution: e };
}

/** Requests waiting for a decision, oldest first, in the projects the principal sees (or one). */
export async function listPendingApprovals(core: Core, p: Principal, projectRef: string | undefined, limit = 200): Promise<Array<{ request: ApprovalRequest; execution: Execution; project: Project }>> {
  const only: Project | undefined = projectRef ? await requireProject(core, p, projectRef, 'view') : undefined;
  const requests = await core.store.approvals.listPending(only ? [only.id] : visibleFilter(p), limit);
  const out: Array<{ request: ApprovalRequest; execution: Execution; project: Project }> = [];
  const projects = new Map<string, Project | undefined>();
  for (const request of requests) {
    const execution = await core.store.getExecution(request.executionId);
    // A request whose execution was cancelled stays pending until the sweep closes it.
    if (!execution || execution.status !== 'awaiting_approval') continue;
    if (!projects.has(request.projectId)) projects.set(request.projectId, await core.store.getProject(request.projectId));
    const project = projects.get(request.projectId);
    if (project) out.push({ request, execution, project });
  }
  return out;
}

/**
 * The sweep's part: requests nobody decided in time end their execution `rejected` with the reason
 * "approval expired"; requests whose execution ended otherwise (cancelled) are closed.
 */
export async function expireApprovals(core: Core): Promise<number> {
  const now = core.now();
  let expired = 0;
  for (const r of await core.store.approvals.listExpired(now, EXPIRE_BATCH)) {
    const done = await transition(core, r.executionId, 'rejected', { statusReason: 'approval expired', finishedAt: now }, {
      from: ['awaiting_approval'],
      wakeProject: true,
      audit: { actor: SYSTEM_ACTOR, action: 'approval.expire', details: { command: r.command, requested_at: new Date(r.createdAt).toISOString() } },
    });
    await core.store.approvals.decide(r.executionId, { status: done ? 'expired' : 'closed', decidedAt: now, decidedById: null, decidedBy: done ? SYSTEM_ACTOR.label : null, comment: done ? 'approval expired' : null });
    if (done) expired++;
  }
  return expired;
}

// ---- the people behind a request ------------------------------------------------------------

async function requestersOf(core: Core, r: ApprovalRequest, e: Execution): Promise<Set<string>> {
  const ids = new Set(r.requesterIds);
  // Who else acted on it before a decision: "run now" of a schedule is audited with the execution.
  const events = await core.store.listAudit({ executionId: e.id }, AUDIT_PAGE);
  for (const a of events.items) {
    if (a.action === 'approval.approve' || a.action === 'approval.deny' || a.action === 'access.denied') continue;
    for (const id of await actorPeople(core, e.projectId, a.actorType, a.actorId)) ids.add(id);
  }
  if (e.scheduleId) for (const id of await schedulePeople(core, e.scheduleId)) ids.add(id);
  return ids;
}

/** The person (user ids) an actor stands for: a user, a personal token's owner, a CI token's creator. */
async function actorPeople(core: Core, projectId: string, type: string, id: string | null): Promise<string[]> {
  if (!id) return [];
  if (type === 'user') return [id];
  if (type !== 'token') return [];
  const token = await core.store.getToken(id);
  if (token) return [token.userId];
  const ci = await core.store.access.getCiToken(id);
  return ci ? peopleOfLabel(core, ci.projectId, ci.createdBy) : [];
}

/**
 * The person a recorded label names (schedules and CI tokens keep who made them as a label):
 * "email" for a session, "email (token name)" for a personal token, "CI token name" for a CI token.
 */
async function peopleOfLabel(core: Core, projectId: string, label: string, depth = 0): Promise<string[]> {
  const ci = /^CI token (.+)$/.exec(label);
  if (ci) {
    if (depth > 2) return [];
    const tokens = (await core.store.access.listCiTokens(projectId)).filter((t) => t.name === ci[1]);
    return (await Promise.all(tokens.map((t) => peopleOfLabel(core, projectId, t.createdBy, depth + 1)))).flat();
  }
  const email = label.replace(/ \(token .*\)$/s, '');
  const user = await core.store.findUserByEmail(email);
  return user ? [user.id] : [];
}

/** Whoever created the schedule or changed it (its creator's label, and its audited edits). */
async function schedulePeople(core: Core, scheduleId: string): Promise<string[]> {
  const s = await core.store.schedules.getSchedule(scheduleId);
  if (!s) return [];
  const ids = new Set(await peopleOfLabel(core, s.projectId, s.createdBy));
  for (const action of ['schedule.create', 'schedule.update']) {
    let cursor: string | undefined;
    for (let page = 0; page < MAX_AUDIT_PAGES; page++) {
      const events = await core.store.listAudit({ projectId: s.projectId, action }, AUDIT_PAGE, cursor);
      for (const a of events.items) {
        if (a.details.schedule_id !== scheduleId) continue;
        for (const id of await actorPeople(core, s.projectId, a.actorType, a.actorId)) ids.add(id);
      }
      if (!events.nextCursor) break;
      cursor = events.nextCursor;
    }
  }
  return [...ids];
}
