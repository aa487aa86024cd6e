/**
 * Creating and changing schedules: what a person or token asks for. Everything is checked before
 * anything is written (the cron expression field by field, the zone, the command, its arguments
 * against argparse, the runner's policy), every change is audited with what changed, and the
 * schedulers of every server are woken to re-read their next due times.
 */
import { randomUUID } from 'node:crypto';
import type { Actor, Project } from '../../domain/model.js';
import {
  DEFAULT_CATCH_UP_SECONDS,
  MAX_HEALTH_EVERY_MINUTES,
  MISFIRE_POLICIES,
  OVERLAP_POLICIES,
  type MisfirePolicy,
  type Occurrence,
  type OverlapPolicy,
  type Schedule,
  type ScheduleSource,
} from '../../domain/schedule.js';
import { checkCron, isTimeZone, knownTimeZones, nextOccurrence, occurrencesBetween } from '../../domain/scheduleCron.js';
import { closestNames } from '../../domain/suggest.js';
import { UserError } from '../../shared/errors.js';
import type { SchedulePatch } from '../../store/scheduleStore.js';
import type { Core } from '../context.js';
import { audit } from '../audit.js';
import { topics } from '../notifier.js';
import { MAX_TIMEOUT_SECONDS } from '../executions.js';
import { checkRun } from '../executions.js';
import { fireOccurrence, type FireResult } from './fireOccurrence.js';

export interface ScheduleInput {
  command?: string;
  argv?: string[];
  args?: string;
  cron?: string;
  timezone?: string;
  name?: string | null;
  timeoutSeconds?: number | null;
  startTimeoutSeconds?: number;
  overlap?: OverlapPolicy;
  misfire?: MisfirePolicy;
  catchUpSeconds?: number;
  healthEveryMinutes?: number | null;
  /** Runs in read-only database mode. */
  readOnly?: boolean;
  paused?: boolean;
}

/** Checks a cron expression and zone; the first occurrence after `from`. */
export function checkTiming(cron: string, timezone: string, from: number): number {
  const checked = checkCron(cron);
  if ('problem' in checked) {
    throw new UserError('DC_BAD_CRON', `cron: ${checked.problem.message}`, { field: 'cron', ...(checked.problem.cronField ? { cron_field: checked.problem.cronField } : {}) });
  }
  if (!isTimeZone(timezone)) {
    const close = closestNames(timezone, knownTimeZones());
    throw new UserError(
      'DC_UNKNOWN_TIMEZONE',
      `timezone: "${timezone}" is not a known IANA time zone (like Europe/Amsterdam or UTC).${close.length ? ` Did you mean ${close.map((z) => `"${z}"`).join(' or ')}?` : ''}`,
      { field: 'timezone', ...(close.length ? { did_you_mean: close } : {}) },
    );
  }
  const next = nextOccurrence(cron, timezone, from);
  if (next === null) throw new UserError('DC_BAD_CRON', `cron: "${cron}" never fires (a date that does not exist, like 31 February).`, { field: 'cron' });
  return next;
}

function checkPolicies(input: ScheduleInput): void {
  if (input.overlap !== undefined && !OVERLAP_POLICIES.includes(input.overlap)) {
    throw new UserError('DC_VALIDATION', `overlap must be ${OVERLAP_POLICIES.join(' or ')}.`, { field: 'overlap' });
  }
  if (input.misfire !== undefined && !MISFIRE_POLICIES.includes(input.misfire)) {
    throw new UserError('DC_VALIDATION', `misfire must be ${MISFIRE_POLICIES.join(' or ')}.`, { field: 'misfire' });
  }
  if (input.catchUpSeconds !== undefined && (!Number.isInteger(input.catchUpSeconds) || input.catchUpSeconds < 0 || input.catchUpSeconds > MAX_TIMEOUT_SECONDS)) {
    throw new UserError('DC_VALIDATION', `catch_up_window must be a whole number of seconds from 0 to ${MAX_TIMEOUT_SECONDS}.`, { field: 'catch_up_window' });
  }
  const every = input.healthEveryMinutes;
  if (every !== undefined && every !== null && (!Number.isInteger(every) || every < 1 || every > MAX_HEALTH_EVERY_MINUTES)) {
    throw new UserError('DC_VALIDATION', `health_every must be a whole number of minutes from 1 to ${MAX_HEALTH_EVERY_MINUTES}.`, { field: 'health_every' });
  }
  if (input.name !== undefined && input.name !== null && (input.name.trim().length === 0 || input.name.length > 200 || /[\u0000-\u001f\u007f]/.test(input.name))) {
    throw new UserError('DC_VALIDATION', 'name must be 1 to 200 characters without control characters.', { field: 'name' });
  }
}

/** A code schedule owns its name in its project: a dashboard schedule may not take it. */
async function checkNameFree(core: Core, projectId: string, name: string | null | undefined, exceptId?: string): Promise<void> {
  const wanted = name?.trim();
  if (!wanted) return;
  const taken = (await core.store.schedules.listSchedules(projectId)).find((s) => s.source === 'code' && s.name === wanted && s.id !== exceptId);
  if (taken) {
    throw new UserError('DC_SCHEDULE_NAME_TAKEN', `name: the schedule "${wanted}" is defined in DJANGOCOMMAND_SCHEDULES (schedule ${taken.id}); choose another name.`, { field: 'name', schedule_id: taken.id });
  }
}

/** Code schedules are changed by a deploy (DJANGOCOMMAND_SCHEDULES), never by edit or delete. */
function refuseCode(s: Schedule, verb: string): void {
  if (s.source !== 'code') return;
  throw new UserError(
    'DC_SCHEDULE_FROM_CODE',
    `Schedule "${s.name}" is defined in DJANGOCOMMAND_SCHEDULES: ${verb} it in the Django settings and deploy (the runner reports the change). Pause and resume work.`,
    { schedule_id: s.id },
  );
}

export async function createSchedule(core: Core, actor: Actor, project: Project, input: ScheduleInput, source: ScheduleSource = 'api'): Promise<Schedule> {
  if (source === 'api') await checkNameFree(core, project.id, input.name);
  if (!input.command) throw new UserError('DC_VALIDATION', 'command is required.', { field: 'command' });
  if (!input.cron) throw new UserError('DC_VALIDATION', 'cron is required (5 fields, or @hourly @daily @weekly @monthly @yearly).', { field: 'cron' });
  const now = core.now();
  const timezone = input.timezone ?? 'UTC';
  const first = checkTiming(input.cron, timezone, now);
  checkPolicies(input);
  const run = await checkRun(core, project, {
    command: input.command,
    argv: input.argv,
    args: input.args,
    timeoutSeconds: input.timeoutSeconds ?? undefined,
    startTimeoutSeconds: input.startTimeoutSeconds,
  });
  const paused = input.paused ?? false;
  const s: Schedule = {
    id: randomUUID(),
    projectId: project.id,
    name: input.name?.trim() || null,
    command: run.command.name,
    argv: run.argv,
    args: run.args,
    cron: input.cron.trim(),
    timezone,
    timeoutSeconds: input.timeoutSeconds ?? null,
    startTimeoutSeconds: input.startTimeoutSeconds ?? core.settings.defaultStartTimeoutSeconds,
    overlap: input.overlap ?? 'skip',
    misfire: input.misfire ?? 'run_once',
    catchUpSeconds: input.catchUpSeconds ?? DEFAULT_CATCH_UP_SECONDS,
    healthEveryMinutes: input.healthEveryMinutes ?? null,
    readOnly: input.readOnly ?? false,
    paused,
    pausedAt: paused ? now : null,
    pausedReason: null,
    source,
    nextDueAt: paused ? null : first,
    lastSuccessAt: null,
    healthSince: now,
    healthAlertedFor: null,
    createdAt: now,
    updatedAt: now,
    createdBy: actor.label,
    deletedAt: null,
  };
  await core.store.schedules.createSchedule(s);
  await audit(core, actor, { action: 'schedule.create', projectId: project.id, details: { schedule_id: s.id, ...(source === 'code' ? { source } : {}), ...auditedFields(s) } });
  core.notifier.publish(topics.schedules);
  return s;
}

export async function getSchedule(core: Core, id: string): Promise<Schedule> {
  const s = /^[0-9a-f-]{36}$/i.test(id) ? await core.store.schedules.getSchedule(id.toLowerCase()) : undefined;
  if (!s || s.deletedAt !== null) throw new UserError('DC_UNKNOWN_SCHEDULE', `No schedule ${id}: list them with \`djangocommand schedule list\`.`, { field: 'schedule' });
  return s;
}

/** Changes what the input names; the cron, zone or command checked again as on create. */
export async function editSchedule(core: Core, actor: Actor, id: string, input: ScheduleInput): Promise<Schedule> {
  const before = await getSchedule(core, id);
  refuseCode(before, 'edit');
  if (input.name !== undefined) await checkNameFree(core, before.projectId, input.name, before.id);
  return changeSchedule(core, actor, before, input);
}

/** Applies an edit already allowed (editSchedule for people, the code sync for DJANGOCOMMAND_SCHEDULES). */
export async function changeSchedule(core: Core, actor: Actor, before: Schedule, input: ScheduleInput): Promise<Schedule> {
  const id = before.id;
  const project = await core.store.getProject(before.projectId);
  if (!project) throw new UserError('DC_UNKNOWN_PROJECT', 'The schedule\'s project no longer exists.');
  const now = core.now();
  const cron = input.cron ?? before.cron;
  const timezone = input.timezone ?? before.timezone;
  const first = checkTiming(cron, timezone, now);
  checkPolicies(input);
  const argsGiven = input.argv !== undefined || input.args !== undefined;
  const run = await checkRun(core, project, {
    command: input.command ?? before.command,
    ...(argsGiven ? { argv: input.argv, args: input.args } : { argv: before.argv }),
    timeoutSeconds: input.timeoutSeconds ?? undefined,
    startTimeoutSeconds: input.startTimeoutSeconds,
  });
  const patch: SchedulePatch = {
    command: run.command.name,
    argv: run.argv,
    args: run.args,
    cron: cron.trim(),
    timezone,
    updatedAt: now,
  };
  if (input.name !== undefined) patch.name = input.name?.trim() || null;
  if (input.timeoutSeconds !== undefined) patch.timeoutSeconds = input.timeoutSeconds;
  if (input.startTimeoutSeconds !== undefined) patch.startTimeoutSeconds = input.startTimeoutSeconds;
  if (input.overlap !== undefined) patch.overlap = input.overlap;
  if (input.misfire !== undefined) patch.misfire = input.misfire;
  if (input.catchUpSeconds !== undefined) patch.catchUpSeconds = input.catchUpSeconds;
  if (input.readOnly !== undefined) patch.readOnly = input.readOnly;
  if (input.healthEveryMinutes !== undefined && input.healthEveryMinutes !== before.healthEveryMinutes) {
    patch.healthEveryMinutes = input.healthEveryMinutes;
    patch.healthSince = now; // a new expectation counts from now
  }
  // A new timing starts from now: occurrences already past are not fired again.
  if (!before.paused && (cron.trim() !== before.cron || timezone !== before.timezone)) patch.nextDueAt = first;
  const after = await core.store.schedules.updateSchedule(before.id, patch);
  if (!after) throw new UserError('DC_UNKNOWN_SCHEDULE', `No schedule ${id}.`, { field: 'schedule' });
  const changes = diff(auditedFields(before), auditedFields(after));
  await audit(core, actor, { action: 'schedule.update', projectId: before.projectId, details: { schedule_id: before.id, ...(before.source === 'code' ? { source: 'code' } : {}), changes } });
  core.notifier.publish(topics.schedules);
  return after;
}

export async function pauseSchedule(core: Core, actor: Actor, id: string): Promise<Schedule> {
  const before = await getSchedule(core, id);
  if (before.paused) return before;
  const now = core.now();
  const after = (await core.store.schedules.updateSchedule(before.id, { paused: true, pausedAt: now, pausedReason: null, nextDueAt: null, updatedAt: now }))!;
  await audit(core, actor, { action: 'schedule.pause', projectId: before.projectId, details: { schedule_id: before.id, changes: { paused: { from: false, to: true } } } });
  core.notifier.publish(topics.schedules);
  return after;
}

/**
 * Resumes from now. The occurrences that fell in the pause are recorded as one row (outcome
 * missed, "paused"), so the history shows the pause instead of a silent hole.
 */
export async function resumeSchedule(core: Core, actor: Actor, id: string): Promise<Schedule> {
  const before = await getSchedule(core, id);
  if (!before.paused) return before;
  if (before.source === 'api') await checkNameFree(core, before.projectId, before.name);
  const now = core.now();
  const next = checkTiming(before.cron, before.timezone, now);
  const after = (await core.store.schedules.updateSchedule(before.id, { paused: false, pausedAt: null, pausedReason: null, nextDueAt: next, healthSince: now, updatedAt: now }))!;
  const from = before.pausedAt ?? before.updatedAt;
  const gap = occurrencesBetween(before.cron, before.timezone, from, now + 1);
  if (gap.count > 0) {
    await core.store.schedules.insertOccurrence({
      scheduleId: before.id,
      projectId: before.projectId,
      dueAt: gap.first!,
      lastDueAt: gap.last!,
      count: gap.count,
      trigger: 'cron',
      outcome: 'missed',
      reason: `paused from ${new Date(from).toISOString()} to ${new Date(now).toISOString()}: ${gap.capped ? 'at least ' : ''}${gap.count} occurrence${gap.count === 1 ? '' : 's'} not run`,
      executionId: null,
      recordedAt: now,
      claimedBy: null,
      claimedAt: null,
      open: false,
    });
  }
  await audit(core, actor, {
    action: 'schedule.resume',
    projectId: before.projectId,
    details: { schedule_id: before.id, changes: { paused: { from: true, to: false } }, occurrences_paused: gap.count },
  });
  core.notifier.publish(topics.schedules);
  return after;
}

export async function deleteSchedule(core: Core, actor: Actor, id: string): Promise<Schedule> {
  const before = await getSchedule(core, id);
  refuseCode(before, 'delete');
  const now = core.now();
  const after = (await core.store.schedules.updateSchedule(before.id, { deletedAt: now, nextDueAt: null, updatedAt: now }))!;
  await audit(core, actor, { action: 'schedule.delete', projectId: before.projectId, details: { schedule_id: before.id, ...auditedFields(before) } });
  core.notifier.publish(topics.schedules);
  return after;
}

/** Runs the schedule's command now, as an occurrence of its own (trigger manual). */
export async function runScheduleNow(core: Core, actor: Actor, id: string): Promise<{ occurrence: Occurrence; result: FireResult }> {
  const s = await getSchedule(core, id);
  let dueAt = core.now();
  const base = { scheduleId: s.id, projectId: s.projectId, trigger: 'manual' as const, outcome: 'pending' as const, reason: null, executionId: null, count: 1, recordedAt: dueAt, claimedBy: 'run-now', open: false };
  // Two clicks in the same millisecond are two runs asked for: the second gets the next millisecond.
  while (!(await core.store.schedules.insertOccurrence({ ...base, dueAt, lastDueAt: dueAt, claimedAt: dueAt }))) dueAt++;
  const result = await fireOccurrence(core, s, { scheduleId: s.id, dueAt, claimedAt: dueAt, trigger: 'manual' });
  await audit(core, actor, {
    action: 'schedule.run_now',
    projectId: s.projectId,
    executionId: result.executionId ?? null,
    outcome: result.outcome === 'started' ? 'ok' : 'denied',
    details: { schedule_id: s.id, command: s.command, args: s.args, ...(result.reason ? { reason: result.reason } : {}) },
  });
  if (result.error) throw result.error;
  const occurrence = (await core.store.schedules.getOccurrence(s.id, dueAt))!;
  return { occurrence, result };
}

export function auditedFields(s: Schedule): Record<string, unknown> {
  return {
    name: s.name,
    command: s.command,
    args: s.args,
    cron: s.cron,
    timezone: s.timezone,
    timeout: s.timeoutSeconds,
    start_timeout: s.startTimeoutSeconds,
    overlap: s.overlap,
    misfire: s.misfire,
    catch_up_window: s.catchUpSeconds,
    health_every: s.healthEveryMinutes,
    read_only: s.readOnly,
    paused: s.paused,
  };
}

export function diff(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of Object.keys(b)) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out[k] = { from: a[k], to: b[k] };
  return out;
}
