/**
 * Schedules as code: DJANGOCOMMAND_SCHEDULES, reported by a v2 runner beside its commands, made
 * the project's code schedules (source `code`).
 *
 * - The entries are matched by name (default: the command's name): a new name creates a
 *   schedule, a changed entry updates it (audited with what changed), a name gone from the
 *   settings deletes it. Each change is audited with the runner's key as the actor.
 * - An entry that fails the checks a schedule from the API gets (cron, zone, unknown command,
 *   arguments, the runner's policy, a name listed twice) is skipped: audited as
 *   `schedule.code_refused` with the reason, and told to the runner, which logs it (again on each
 *   reconnect: the runner's digest covers it, the stored schedules do not). It never
 *   fails the catalogue sync. A code schedule whose entry became invalid is deleted like one that
 *   is gone: the code schedules are exactly the valid entries.
 * - Conflict: a code schedule owns its name in its project. A dashboard (API) schedule of the
 *   same name is paused when the code one is synced, with the reason shown and audited, so the
 *   two never both run; it cannot be resumed or renamed onto the name while the code one exists.
 *   When the entry is removed from the settings, the dashboard schedule stays paused until a
 *   person resumes it.
 */
import type { Project } from '../../domain/model.js';
import type { CodeScheduleSpec } from '../../domain/codeSchedule.js';
import type { Schedule } from '../../domain/schedule.js';
import { isUserError, UserError } from '../../shared/errors.js';
import type { Core } from '../context.js';
import type { RunnerCaller } from '../runnerCaller.js';
import { audit } from '../audit.js';
import { topics } from '../notifier.js';
import { auditedFields, changeSchedule, createSchedule } from './schedules.js';
import { joinShellWords, splitShellWords } from '../../domain/shellWords.js';

export interface RefusedCodeSchedule {
  name: string;
  code: string;
  message: string;
}

export interface CodeSyncResult {
  created: string[];
  updated: string[];
  deleted: string[];
  refused: RefusedCodeSchedule[];
}

/** Makes the project's code schedules exactly the valid entries of `specs`. */
export async function syncCodeSchedules(core: Core, caller: RunnerCaller, specs: readonly CodeScheduleSpec[]): Promise<CodeSyncResult> {
  const project = (await core.store.getProject(caller.project.id)) ?? caller.project;
  const existing = await core.store.schedules.listSchedules(project.id);
  const code = new Map(existing.filter((s) => s.source === 'code').map((s) => [s.name ?? '', s]));
  const result: CodeSyncResult = { created: [], updated: [], deleted: [], refused: [] };
  const listed = new Set<string>();
  const kept = new Set<string>();
  for (const spec of specs) {
    const name = spec.name.trim();
    try {
      if (listed.has(name)) {
        throw new UserError('DC_VALIDATION', `name: "${name}" is listed twice in DJANGOCOMMAND_SCHEDULES; names are unique in a project.`, { field: 'name' });
      }
      listed.add(name);
      const input = { name, command: spec.command, args: spec.args, cron: spec.cron, timezone: spec.timezone };
      const before = code.get(name);
      let s: Schedule;
      if (!before) {
        s = await createSchedule(core, caller.actor, project, input, 'code');
        result.created.push(name);
      } else if (differs(before, spec)) {
        s = await changeSchedule(core, caller.actor, before, input);
        result.updated.push(name);
      } else {
        s = before;
      }
      kept.add(name);
      await takeOver(core, caller, project, s, existing);
    } catch (err) {
      if (!isUserError(err)) throw new Error(`Syncing the code schedule "${name}" failed`, { cause: err });
      result.refused.push({ name, code: err.code, message: `DJANGOCOMMAND_SCHEDULES entry "${name}" skipped: ${err.message}` });
      await audit(core, caller.actor, {
        action: 'schedule.code_refused',
        projectId: project.id,
        outcome: 'denied',
        details: { name, command: spec.command, args: spec.args, cron: spec.cron, timezone: spec.timezone, code: err.code, reason: err.message },
      });
    }
  }
  for (const [name, s] of code) {
    if (kept.has(name)) continue;
    const now = core.now();
    await core.store.schedules.updateSchedule(s.id, { deletedAt: now, nextDueAt: null, updatedAt: now });
    const why = listed.has(name) ? 'its DJANGOCOMMAND_SCHEDULES entry is invalid' : 'gone from DJANGOCOMMAND_SCHEDULES';
    await audit(core, caller.actor, { action: 'schedule.delete', projectId: project.id, details: { schedule_id: s.id, source: 'code', reason: why, ...auditedFields(s) } });
    core.notifier.publish(topics.schedules);
    result.deleted.push(name);
  }
  return result;
}

/** Pauses the running dashboard schedules that share the code schedule's name, saying why. */
async function takeOver(core: Core, caller: RunnerCaller, project: Project, owner: Schedule, existing: readonly Schedule[]): Promise<void> {
  for (const s of existing) {
    if (s.source !== 'api' || s.name !== owner.name || s.paused) continue;
    const now = core.now();
    const reason = `taken over by the schedule "${owner.name}" from code (DJANGOCOMMAND_SCHEDULES, schedule ${owner.id}), so it does not run twice`;
    const after = await core.store.schedules.updateSchedule(s.id, { paused: true, pausedAt: now, pausedReason: reason, nextDueAt: null, updatedAt: now });
    if (!after) continue;
    await audit(core, caller.actor, {
      action: 'schedule.pause',
      projectId: project.id,
      details: { schedule_id: s.id, changes: { paused: { from: false, to: true } }, reason, code_schedule_id: owner.id },
    });
    core.notifier.publish(topics.schedules);
  }
}

function differs(s: Schedule, spec: CodeScheduleSpec): boolean {
  let args = spec.args;
  try {
    args = joinShellWords(splitShellWords(spec.args));
  } catch (err) {
    // Unbalanced quotes: changeSchedule refuses them with the same words; treat as changed.
    if (!isUserError(err)) throw err;
    return true;
  }
  return s.command !== spec.command || s.args !== args || s.cron !== spec.cron.trim() || s.timezone !== spec.timezone;
}
