/** Domain records → REST views. The only place that knows how the API spells a record. */
import { isTerminal, outputMissing } from '../domain/execution.js';
import type { AuditEvent, Command, Execution, OutputChunk, Project, Runner, RunnerKey } from '../domain/model.js';
import type { AuditEventView, CommandView, ExecutionView, OutputChunkView, RunnerKeyView, RunnerView } from './api.js';

export const iso = (ms: number) => new Date(ms).toISOString();
const isoOrNull = (ms: number | null) => (ms === null ? null : iso(ms));

export function executionView(e: Execution, projectName: string): ExecutionView {
  return {
    id: e.id,
    project: projectName,
    project_id: e.projectId,
    command: e.command,
    args: e.args,
    argv: e.argv,
    status: e.status,
    status_reason: e.statusReason,
    exit_code: e.exitCode,
    timeout: e.timeoutSeconds,
    start_deadline: isoOrNull(e.startDeadline),
    schedule_id: e.scheduleId,
    read_only: e.readOnly,
    created_at: iso(e.createdAt),
    created_by: e.createdByLabel,
    runner_id: e.runnerId,
    dispatched_at: isoOrNull(e.dispatchedAt),
    started_at: isoOrNull(e.startedAt),
    finished_at: isoOrNull(e.finishedAt),
    duration_ms: e.startedAt !== null && e.finishedAt !== null ? e.finishedAt - e.startedAt : null,
    cancel_requested: e.cancelRequestedAt !== null,
    cancel_force: e.cancelForce,
    output_bytes: e.outputBytes,
    output_last_seq: e.outputLastSeq,
    output_missing_chunks: outputMissing(e),
    output_incomplete: isTerminal(e.status) && outputMissing(e) > 0,
    late_status: e.lateStatus,
    late_exit_code: e.lateExitCode,
  };
}

export function runnerView(r: Runner, online: boolean): RunnerView {
  return {
    id: r.id,
    address: r.address,
    hostname: r.hostname,
    max_concurrency: r.maxConcurrency,
    protocol: r.protocol,
    online,
    runner_version: r.runnerVersion,
    python_version: r.pythonVersion,
    django_version: r.djangoVersion,
    first_seen_at: iso(r.firstSeenAt),
    last_seen_at: iso(r.lastSeenAt),
  };
}

export function runnerKeyView(k: RunnerKey): RunnerKeyView {
  return { id: k.id, name: k.name, prefix: k.prefix, created_at: iso(k.createdAt), revoked_at: isoOrNull(k.revokedAt) };
}

export function commandView(c: Command, defaultConcurrency: number): CommandView {
  return {
    name: c.name,
    app_label: c.appLabel,
    help_text: c.helpText,
    schema: c.schema,
    refused: c.refused,
    max_concurrency: c.maxConcurrency ?? defaultConcurrency,
    read_only: c.readOnlyDefault || c.djangoReadOnly,
    read_only_default: c.readOnlyDefault,
    django_read_only: c.djangoReadOnly,
    synced_at: iso(c.syncedAt),
  };
}

export function auditView(a: AuditEvent): AuditEventView {
  return {
    id: a.id,
    at: iso(a.at),
    actor_type: a.actorType,
    actor_id: a.actorId,
    actor: a.actorLabel,
    address: a.address,
    action: a.action,
    project_id: a.projectId,
    execution_id: a.executionId,
    outcome: a.outcome,
    details: a.details,
  };
}

export function chunkView(c: OutputChunk): OutputChunkView {
  return { seq: c.seq, stream: c.stream, data: c.data, line_times: c.lineTimes };
}

export function projectSummary(p: Project, runnersOnline: number, activeExecutions: number) {
  return { id: p.id, name: p.name, created_at: iso(p.createdAt), commands_hash: p.commandsHash, runners_online: runnersOnline, active_executions: activeExecutions };
}
