/**
 * The use cases behind runner protocol v2 (wire format: src/shared/protocolV2.ts). The
 * WebSocket binding (src/server/runnerSessions.ts) calls these; they only touch the store.
 */
import type { Execution, Runner } from '../domain/model.js';
import { isTerminal, type ExecutionStatus } from '../domain/execution.js';
import { UserError } from '../shared/errors.js';
import type { CommandsMessage, Finished, Hello, OutputHeader, Started, Execute } from '../shared/protocolV2.js';
import type { Core } from './context.js';
import type { RunnerCaller } from './runnerCaller.js';
import { audit } from './audit.js';
import { finishExecution } from './finishExecution.js';
import { replaceCatalogue } from './commandCatalogue.js';
import { topics } from './notifier.js';
import { claimQueued, transition } from './executionState.js';
import { codeSchedulesDigest, splitCatalogueHash } from '../domain/codeSchedule.js';
import { syncCodeSchedules, type RefusedCodeSchedule } from './schedules/codeSchedules.js';
import { dataBytes, observe } from './observer.js';

export interface HelloResult {
  runner: Runner;
  commandsInSync: boolean;
  /** Executions the runner says it runs that the server has given up on: tell it to stop them. */
  cancel: string[];
}

export async function hello(core: Core, caller: RunnerCaller, msg: Hello): Promise<HelloResult> {
  const runner = await sightV2(core, caller, msg);
  if (runner.firstSeenAt === runner.lastSeenAt) {
    await audit(core, caller.actor, {
      action: 'runner.connect',
      projectId: caller.project.id,
      details: { runner_id: runner.id, hostname: msg.hostname, protocol: 2, runner_version: msg.runner_version, python: msg.python_version, django: msg.django_version },
    });
  }
  const cancel: string[] = [];
  for (const id of msg.running) {
    const e = await core.store.getExecution(id);
    if (!e || e.projectId !== caller.project.id) {
      cancel.push(id);
      continue;
    }
    if (e.status === 'dispatched') {
      // It started while the runner was cut off from us: a server restart or a network cut.
      await transition(core, id, 'running', { runnerId: runner.id, startedAt: e.startedAt ?? core.now() }, { from: ['dispatched'] });
    } else if (isTerminal(e.status)) {
      // Over for the server (cancelled, timed out, or lost: final once reported): stop it on the host.
      cancel.push(id);
    }
  }
  if (msg.features?.includes('lists_received')) {
    // Offered to it before this connection, and not among what it has: the `execute` never
    // reached it (the replica that sent it died, or the connection broke first). Never
    // received, so never started: it goes back to the queue. An older runner may leave out
    // one it is starting, so only a runner that lists everything it received is read this way.
    const listed = new Set(msg.running);
    for (const e of await core.store.listDispatchedTo(runner.id)) {
      if (!listed.has(e.id) && e.projectId === caller.project.id) await unclaim(core, e.id);
    }
  }
  const project = (await core.store.getProject(caller.project.id)) ?? caller.project;
  // A runner reporting DJANGOCOMMAND_SCHEDULES sends `<commands hash>;schedules=<digest>`: both must match.
  const reported = splitCatalogueHash(msg.commands_hash);
  const commandsInSync =
    project.commandsHash !== '' &&
    project.commandsHash === reported.commands &&
    (reported.schedules === undefined || reported.schedules === (await storedCodeDigest(core, project.id)));
  return { runner, commandsInSync, cancel };
}

export function sightV2(core: Core, caller: RunnerCaller, msg?: Hello): Promise<Runner> {
  return core.store.sightRunner({
    projectId: caller.project.id,
    keyId: caller.key.id,
    address: caller.address,
    protocol: 'v2',
    instance: msg?.runner_id ?? caller.instance ?? '',
    hostname: msg?.hostname,
    maxConcurrency: msg?.max_concurrency,
    at: core.now(),
    versions: msg && {
      runnerVersion: msg.runner_version,
      pythonVersion: msg.python_version,
      djangoVersion: msg.django_version,
      commandsHash: msg.commands_hash,
    },
  });
}

export interface SyncResult {
  hash: string;
  /** DJANGOCOMMAND_SCHEDULES entries skipped, with why: the runner is told (it logs them). */
  refusedSchedules: RefusedCodeSchedule[];
}

/** The catalogue first (code schedules are checked against it), then the code schedules, if sent. */
export async function syncCommands(core: Core, caller: RunnerCaller, msg: CommandsMessage): Promise<SyncResult> {
  const hash = await replaceCatalogue(core, caller, msg.commands);
  if (msg.schedules === undefined) return { hash, refusedSchedules: [] };
  const synced = await syncCodeSchedules(core, caller, msg.schedules);
  return { hash, refusedSchedules: synced.refused };
}

/** The digest of the code schedules stored for the project, as the runner computes it over its settings. */
async function storedCodeDigest(core: Core, projectId: string): Promise<string> {
  const code = (await core.store.schedules.listSchedules(projectId)).filter((s) => s.source === 'code');
  return codeSchedulesDigest(code.map((s) => ({ name: s.name ?? '', command: s.command, args: s.args, cron: s.cron, timezone: s.timezone })));
}

/** Claims up to `limit` of the project's queued executions for this runner, oldest first, with the message that hands each out. */
export async function claim(core: Core, runner: Runner, limit: number, readOnlyToo: boolean): Promise<Array<{ execution: Execution; execute: Execute }>> {
  const claimed = await claimQueued(core, runner.projectId, runner.id, limit, readOnlyToo);
  return claimed.map((e) => ({
    execution: e,
    execute: { type: 'execute', execution_id: e.id, command: e.command, argv: e.argv, timeout: e.timeoutSeconds, metadata_only: e.metadataOnly, read_only: e.readOnly },
  }));
}

async function ownExecution(core: Core, caller: RunnerCaller, id: string): Promise<Execution> {
  const e = await core.store.getExecution(id);
  if (!e || e.projectId !== caller.project.id) throw new UserError('DC_UNKNOWN_EXECUTION', `No execution ${id} in this project.`);
  return e;
}

/** Takes back a claim whose `execute` never left this server: never sent, so never started. */
export async function unclaim(core: Core, id: string): Promise<void> {
  await transition(core, id, 'queued', { runnerId: null, dispatchedAt: null }, { from: ['dispatched'], wakeProject: true });
}

/** One v2 runner process, seen under two rows (it reconnected from another address). */
function sameRunner(runner: Runner, other: Runner | undefined): boolean {
  return other !== undefined && other.protocol === 'v2' && other.projectId === runner.projectId && other.instance !== '' && other.instance === runner.instance;
}

/** Returns false when the execution was cancelled (or lost), or started by another runner, before it could start: the runner must stop it. */
export async function started(core: Core, caller: RunnerCaller, runner: Runner, msg: Started): Promise<boolean> {
  // Changed without reading it first (one statement, not two, for each start); read only when not.
  const done = await transition(
    core,
    msg.execution_id,
    'running',
    { runnerId: runner.id, startedAt: Math.min(core.now(), Math.round(msg.at)) || core.now() },
    {
      inProject: caller.project.id,
      audit: (e) => ({ actor: caller.actor, action: 'execution.start', details: { command: e.command, args: e.args, runner_id: runner.id, pid: msg.pid, warm: msg.warm } }),
    },
  );
  if (done) return true;
  const e = await ownExecution(core, caller, msg.execution_id);
  // Said again (a resend after a reconnect): fine if it is this runner's, even under a new address.
  // Another runner started it (a v1 runner of the same project): this one must stop it.
  if (e.status === 'running') return e.runnerId === runner.id || (e.runnerId !== null && sameRunner(runner, await core.store.getRunner(e.runnerId)));
  return false;
}

/** Stores one chunk; `data` may be the UTF-8 bytes of a binary frame, stored as they are. */
export async function output(core: Core, caller: RunnerCaller, msg: OutputHeader & { data: string | Uint8Array }): Promise<void> {
  const e = await ownExecution(core, caller, msg.execution_id);
  const stored = await core.store.appendOutput({
    executionId: e.id,
    seq: msg.seq,
    stream: msg.stream,
    data: msg.data,
    lineTimes: msg.line_times,
    receivedAt: core.now(),
  });
  if (stored) core.notifier.publish(topics.execution(e.id));
  if (stored) observe(core, (o) => o.outputStored?.(e, dataBytes(msg.data), msg.seq === 1, core.now()));
}

export async function finished(core: Core, caller: RunnerCaller, runner: Runner, msg: Finished): Promise<ExecutionStatus> {
  // Only a cancelled end needs the execution read first: why it was cancelled names the status.
  const e = msg.status === 'cancelled' ? await ownExecution(core, caller, msg.execution_id) : { id: msg.execution_id, projectId: caller.project.id };
  let status: ExecutionStatus;
  switch (msg.status) {
    case 'success':
      status = msg.exit_code === 0 ? 'succeeded' : 'failed';
      break;
    case 'cancelled':
      status = 'cancelReason' in e && e.cancelReason === 'timeout' ? 'timed_out' : 'cancelled';
      break;
    default:
      status = msg.status;
  }
  return finishExecution(core, caller.actor, e, { status, exitCode: msg.exit_code, reason: msg.reason ?? null, runnerId: runner.id, reported: msg.status, lastSeq: msg.last_seq });
}

/** The runner said it is stopping and closed its connection: show it offline at once, and say so. */
export async function stopped(core: Core, caller: RunnerCaller, runner: Runner): Promise<void> {
  await core.store.markRunnerStopped(runner.id, core.now());
  await audit(core, caller.actor, { action: 'runner.disconnect', projectId: caller.project.id, details: { runner_id: runner.id, reason: 'runner stopping' } });
  core.notifier.publish(topics.project(caller.project.id));
}
