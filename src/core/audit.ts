/** Writing audit events: one call per thing a person, token or runner did. */
import type { Actor, AuditEvent, NewAuditEvent } from '../domain/model.js';
import type { Core } from './context.js';

export interface AuditInput {
  action: string;
  projectId?: string | null;
  executionId?: string | null;
  outcome?: AuditEvent['outcome'];
  details?: Record<string, unknown>;
}

export async function audit(core: Core, actor: Actor, input: AuditInput): Promise<AuditEvent> {
  return core.store.appendAudit(auditEvent(core, actor, input));
}

/** The event audit() appends, for callers that append several in one go (store.appendAudits). */
export function auditEvent(core: Core, actor: Actor, input: AuditInput): NewAuditEvent {
  return {
    at: core.now(),
    actorType: actor.type,
    actorId: actor.id,
    actorLabel: actor.label,
    address: actor.address,
    action: input.action,
    projectId: input.projectId ?? null,
    executionId: input.executionId ?? null,
    outcome: input.outcome ?? 'ok',
    details: input.details ?? {},
  };
}

export const SYSTEM_ACTOR: Actor = { type: 'system', id: null, label: 'djangocommand server', address: null };

/** The actor for an `admin` command run on the server host itself. */
export function hostActor(): Actor {
  return { type: 'system', id: null, label: `admin CLI as ${process.env.USER ?? 'unknown user'} on the server host`, address: null };
}
