/** Creating and cancelling executions: what a person or token asks for. */
import { randomUUID } from 'node:crypto';
import type { Actor, Command, Execution, NewAuditEvent, Project } from '../domain/model.js';
import { isTerminal } from '../domain/execution.js';
import { joinShellWords, splitShellWords } from '../domain/shellWords.js';
import { validateArgv } from '../domain/argvValidation.js';
import { closestNames } from '../domain/suggest.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit, auditEvent } from './audit.js';
import { topics } from './notifier.js';
import { announceStopRequest, transition } from './executionState.js';
import { decideReadOnly, type ReadOnlyDecision } from './readOnlyRuns.js';
import type { CommandSettings } from '../domain/commandSettings.js';
import { needsApproval, type ApprovalRequest } from '../domain/approval.js';
import { settingsFor } from './commandSettings.js';
import { announceRequests, approvalRequest } from './approvals.js';

export const MAX_TIMEOUT_SECONDS = 7 * 24 * 3600;
const MAX_ARGV_ITEMS = 1000;
const MAX_ARGS_CHARS = 64 * 1024;

export interface CreateExecutionInput {
  command: string;
  argv?: string[];
  args?: string;
  timeoutSeconds?: number;
  /** Seconds a runner has to start it; then it ends `expired`. */
  startTimeoutSeconds?: number;
  /** The schedule creating it (its occurrence), if any. */
  scheduleId?: string;
  /** Asked for read-only database mode; the command's defaults may make it read-only anyway. */
  readOnly?: boolean;
}

export interface CheckedRun {
  command: Command;
  argv: string[];
  args: string;
  timeoutSeconds: number;
  startTimeoutSeconds: number;
  /** The command's settings (core/commandSettings.ts): default timeout, metadata-only, approval. */
  settings: CommandSettings;
}

/**
 * The checks every run of a command gets (unknown command, the runner's policy, argparse,
 * timeouts), made without running anything: createExecution uses them, and a schedule is checked
 * with them when it is saved, with the same codes and words it would get when it fires.
 */
export async function checkRun(
  core: Core,
  project: Project,
  input: Omit<CreateExecutionInput, 'scheduleId'>,
  getCommand: (projectId: string, name: string) => Promise<Command | undefined> = (p, n) => core.store.getCommand(p, n),
  getSettings: (projectId: string, name: string) => Promise<CommandSettings> = async (p, n) => (await settingsFor(core, p, [n])).get(n)!,
): Promise<CheckedRun> {
  const command = await getCommand(project.id, input.command);
  if (!command) {
    const known = await core.store.listCommands(project.id);
    const close = closestNames(input.command, known.map((c) => c.name));
    const hint =
      known.length === 0
        ? ' No runner has reported commands for this project yet: start a runner with its API key.'
        : close.length > 0
          ? ` Did you mean ${close.map((n) => `"${n}"`).join(' or ')}?`
          : ` Known commands: ${known.map((c) => c.name).slice(0, 30).join(', ')}${known.length > 30 ? ', …' : ''}.`;
    throw new UserError('DC_UNKNOWN_COMMAND', `Project "${project.name}" has no command "${input.command}".${hint}`, close.length > 0 ? { did_you_mean: close } : undefined);
  }
  if (command.refused) {
    throw new UserError('DC_COMMAND_NOT_ALLOWED', `The runners of "${project.name}" refuse "${command.name}": ${command.refused}`);
  }
  const { argv, args } = normaliseArguments(input);
  const problem = validateArgv(command.schema, argv);
  if (problem) {
    throw new UserError('DC_BAD_ARGS', `${command.name}: ${problem.message}`, { field: problem.field });
  }
  const settings = await getSettings(project.id, command.name);
  const timeoutSeconds = seconds('timeout', input.timeoutSeconds ?? settings.defaultTimeoutSeconds ?? core.settings.defaultTimeoutSeconds);
  const startTimeoutSeconds = seconds('start_timeout', input.startTimeoutSeconds ?? core.settings.defaultStartTimeoutSeconds);
  return { command, argv, args, timeoutSeconds, startTimeoutSeconds, settings };
}

function seconds(field: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_SECONDS) {
    throw new UserError('DC_VALIDATION', `${field} must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECONDS}.`, { field });
  }
  return value;
}

export async function createExecution(core: Core, actor: Actor, project: Project, input: CreateExecutionInput): Promise<Execution> {
  const [made] = await createExecutions(core, [{ actor, project, input }]);
  if (made instanceof UserError) throw made;
  return made;
}

export interface ExecutionRequest {
  actor: Actor;
  project: Project;
  input: CreateExecutionInput;
}

/**
 * Makes executions: each checked like any run, then all written in one transaction (each against
 * its command's concurrency limit) and their audit events in one more, so a burst of schedules
 * due in the same second costs a few commits instead of two per execution. Each result is the
 * execution or why it was refused; a failure of the database throws.
 */
export async function createExecutions(core: Core, requests: readonly ExecutionRequest[]): Promise<Array<Execution | UserError>> {
  const results: Array<Execution | UserError> = [];
  const audits: NewAuditEvent[] = [];
  const toCreate: Array<{ at: number; request: ExecutionRequest; execution: Execution; limit: number; startTimeout: number; mode: ReadOnlyDecision }> = [];
  // The commands asked for, one query per project.
  const wanted = new Map<string, Set<string>>();
  for (const { project, input } of requests) wanted.set(project.id, (wanted.get(project.id) ?? new Set()).add(input.command));
  const commands = new Map<string, Command>();
  const settings = new Map<string, CommandSettings>();
  for (const [projectId, names] of wanted) {
    for (const { command, settings: st } of await core.store.commandSettings.getCommandsWithSettings(projectId, [...names])) {
      commands.set(`${projectId}/${command.name}`, command);
      settings.set(`${projectId}/${command.name}`, st);
    }
  }
  const getCommand = async (projectId: string, name: string) => commands.get(`${projectId}/${name}`);
  const getSettings = async (projectId: string, name: string) => settings.get(`${projectId}/${name}`)!;
  // Runs of a command that requires approval wait for one; the request is written first.
  const approvals = new Map<string, { actor: Actor; request: ApprovalRequest }>();
  for (const request of requests) {
    const { actor, project, input } = request;
    let checked: CheckedRun;
    try {
      checked = await checkRun(core, project, input, getCommand, getSettings);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      // Refusals of what may run are audited; argument mistakes are not (nothing was at stake).
      if (err.code === 'DC_UNKNOWN_COMMAND' || err.code === 'DC_COMMAND_NOT_ALLOWED') {
        const reason = err.code === 'DC_UNKNOWN_COMMAND' ? 'unknown command' : 'refused by runner policy';
        audits.push(auditEvent(core, actor, { action: 'execution.create', projectId: project.id, outcome: 'denied', details: { command: input.command, reason } }));
      }
      results.push(err);
      continue;
    }
    let mode: ReadOnlyDecision;
    try {
      mode = await decideReadOnly(core, project, checked.command, input.readOnly === true);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      audits.push(auditEvent(core, actor, { action: 'execution.create', projectId: project.id, outcome: 'denied', details: { command: input.command, reason: 'read-only mode needs a v2 runner', read_only: true } }));
      results.push(err);
      continue;
    }
    const execution = newExecution(core, actor, project, checked, input.scheduleId ?? null, mode.readOnly);
    if (execution.status === 'awaiting_approval') approvals.set(execution.id, { actor, request: await approvalRequest(core, actor, execution, checked.settings, checked.startTimeoutSeconds) });
    toCreate.push({ at: results.length, request, execution, limit: checked.command.maxConcurrency ?? core.settings.defaultConcurrency, startTimeout: checked.startTimeoutSeconds, mode });
    results.push(execution);
  }
  await core.store.approvals.createMany([...approvals.values()].map((a) => a.request));
  const made = await core.store.createExecutions(toCreate.map(({ execution, limit }) => ({ execution, limit })));
  await core.store.approvals.deleteMany(toCreate.filter((c, i) => !made[i].created && approvals.has(c.execution.id)).map((c) => c.execution.id));
  for (const [i, { at, request, execution, limit, startTimeout, mode }] of toCreate.entries()) {
    const { actor, project } = request;
    const { command, args, argv, timeoutSeconds } = execution;
    const result = made[i];
    if (result.created) {
      audits.push(auditEvent(core, actor, { action: 'execution.create', projectId: project.id, executionId: execution.id, details: { command, args, argv, timeout: timeoutSeconds, start_timeout: startTimeout, read_only: mode.readOnly, ...(mode.readOnly ? { read_only_sources: mode.sources } : {}) } }));
      continue;
    }
    const first = result.active[0];
    audits.push(auditEvent(core, actor, { action: 'execution.create', projectId: project.id, outcome: 'denied', details: { command, args, reason: 'concurrency limit', active: result.active.map((e) => e.id) } }));
    results[at] = new UserError(
      'DC_CONCURRENCY_LIMIT',
      `"${command}" is already ${first.status} in project "${project.name}" (execution ${first.id}, started by ${first.createdByLabel}); ` +
        `at most ${limit} at a time. Wait for it, cancel it, or raise the command's limit.`,
      { active: result.active.map((e) => e.id), limit },
    );
  }
  await core.store.appendAudits(audits);
  await announceRequests(core, toCreate.flatMap((c, i) => (made[i].created && approvals.has(c.execution.id) ? [{ ...approvals.get(c.execution.id)!, execution: c.execution }] : [])));
  for (const projectId of new Set(toCreate.filter((_, i) => made[i].created).map((c) => c.execution.projectId))) core.notifier.publish(topics.project(projectId));
  return results;
}

function newExecution(core: Core, actor: Actor, project: Project, checked: CheckedRun, scheduleId: string | null, readOnly: boolean): Execution {
  const now = core.now();
  return {
    id: randomUUID(),
    projectId: project.id,
    command: checked.command.name,
    args: checked.args,
    argv: checked.argv,
    // A run that needs approval waits for it (core/approvals.ts); the others are queued at once.
    status: needsApproval(checked.settings, checked.args) ? 'awaiting_approval' : 'queued',
    statusReason: null,
    exitCode: null,
    timeoutSeconds: checked.timeoutSeconds,
    startDeadline: now + checked.startTimeoutSeconds * 1000,
    scheduleId,
    // Protocol v1's use_metadata_only_mode and v2's metadata_only carry it to the runner.
    metadataOnly: checked.settings.metadataOnly,
    readOnly,
    createdAt: now,
    createdByType: actor.type,
    createdById: actor.type === 'token' || actor.type === 'user' ? actor.id : null,
    createdByLabel: actor.label,
    runnerId: null,
    dispatchedAt: null,
    startedAt: null,
    finishedAt: null,
    cancelRequestedAt: null,
    cancelForce: false,
    cancelReason: null,
    outputBytes: 0,
    outputChunks: 0,
    outputLastSeq: 0,
    outputExpectedSeq: null,
    lateStatus: null,
    lateExitCode: null,
    runnerLastSeq: 0,
    runnerChunks: 0,
  };
}

function normaliseArguments(input: CreateExecutionInput): { argv: string[]; args: string } {
  if (input.argv !== undefined && input.args !== undefined) {
    throw new UserError('DC_VALIDATION', 'Give either argv (a list) or args (one string), not both.', { field: 'argv' });
  }
  if (input.argv !== undefined) {
    if (input.argv.length > MAX_ARGV_ITEMS) throw new UserError('DC_VALIDATION', `argv may hold at most ${MAX_ARGV_ITEMS} items.`, { field: 'argv' });
    if (input.argv.some((a) => a.includes('\0'))) throw new UserError('DC_VALIDATION', 'argv items may not contain NUL characters.', { field: 'argv' });
    const args = joinShellWords(input.argv);
    if (args.length > MAX_ARGS_CHARS) throw new UserError('DC_VALIDATION', `Arguments may be at most ${MAX_ARGS_CHARS} characters long.`, { field: 'argv' });
    return { argv: [...input.argv], args };
  }
  const args = input.args ?? '';
  if (args.length > MAX_ARGS_CHARS) throw new UserError('DC_VALIDATION', `Arguments may be at most ${MAX_ARGS_CHARS} characters long.`, { field: 'args' });
  if (args.includes('\0')) throw new UserError('DC_VALIDATION', 'Arguments may not contain NUL characters.', { field: 'args' });
  const argv = splitShellWords(args);
  // Stored in canonical quoting so v1 runners split exactly what the user meant.
  return { argv, args: joinShellWords(argv) };
}

export async function getExecutionIn(core: Core, id: string): Promise<Execution> {
  const e = await core.store.getExecution(id);
  if (!e) throw new UserError('DC_UNKNOWN_EXECUTION', `No execution ${id}.`);
  return e;
}

/**
 * Cancels: an execution no runner has started ends at once; a running one is asked to stop
 * (SIGTERM, then SIGKILL after the runner's grace period; `force` kills at once).
 */
export async function cancelExecution(core: Core, actor: Actor, id: string, force: boolean): Promise<Execution> {
  const e = await getExecutionIn(core, id);
  const now = core.now();
  let updated: Execution | undefined;
  if (e.status === 'queued' || e.status === 'dispatched' || e.status === 'awaiting_approval') {
    updated = await transition(core, id, 'cancelled', {
      statusReason: `cancelled by ${actor.label} before it started`,
      finishedAt: now,
      cancelRequestedAt: now,
      cancelForce: force,
      cancelReason: 'user',
    }, { from: ['queued', 'dispatched', 'awaiting_approval'], wakeProject: true });
  } else if (e.status === 'running') {
    // Not a change of status: the runner is asked to stop it, and reports how it ended.
    updated = await core.store.updateExecution(id, ['running'], {
      cancelRequestedAt: e.cancelRequestedAt ?? now,
      cancelForce: e.cancelForce || force,
      cancelReason: 'user',
    });
  }
  if (!updated) {
    // It moved on between our read and our write, or was already over.
    const current = await getExecutionIn(core, id);
    if (isTerminal(current.status)) {
      throw new UserError('DC_INVALID_TRANSITION', `Execution ${id} has already ended (${current.status}); there is nothing to cancel.`, {
        status: current.status,
      });
    }
    return cancelExecution(core, actor, id, force);
  }
  await audit(core, actor, { action: 'execution.cancel', projectId: e.projectId, executionId: id, details: { force, status_before: e.status } });
  announceStopRequest(core, id);
  return updated;
}

