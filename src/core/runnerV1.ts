/**
 * The use cases behind runner protocol v1 (see src/shared/protocolV1.ts for the wire format).
 * Every operation is idempotent, because the Python client retries with the same request.
 */
import { sightingWriteEveryMs, type Actor, type Execution, type Project, type Runner, type RunnerKey } from '../domain/model.js';
import { finalStatus, isTerminal, type RunnerCompletion } from '../domain/execution.js';
import { UserError } from '../shared/errors.js';
import {
  V1_REJECTION_MARKER,
  type CommandsSyncRequest,
  type HeartbeatRequest,
  type PendingExecution,
} from '../shared/protocolV1.js';
import type { Core } from './context.js';
import type { RunnerCaller } from './runnerCaller.js';
import { audit } from './audit.js';
import { finishExecution } from './finishExecution.js';
import { replaceCatalogue } from './commandCatalogue.js';
import { hashSecret, RUNNER_KEY_PREFIX, USER_TOKEN_PREFIX } from './secrets.js';
import { topics } from './notifier.js';
import { transition } from './executionState.js';
import { dataBytes, observe } from './observer.js';
import { dispatchableProjects } from './dispatchableProjects.js';

/** Who is calling: resolved once per request from the key, the address and the headers. */
export type { RunnerCaller } from './runnerCaller.js';

export interface RunnerCredentials {
  bearer: string | undefined;
  timestamp: string | undefined;
  nonce: string | undefined;
  address: string;
  /** Hash of method, path and body: a retry carries the same, a forgery or replay of another request not. */
  fingerprint: string;
}

/** A retry of a request already answered: send this answer again instead of acting twice. */
export interface RepeatedAnswer {
  status: number;
  body: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How many executions one pending/ answer offers; the client runs at most 4 at once. */
const PENDING_BATCH = 10;

export async function authenticateRunner(core: Core, c: RunnerCredentials): Promise<RunnerCaller & { repeat?: RepeatedAnswer }> {
  const caller = await verifyRunnerKey(core, c);
  const repeat = await claimNonce(core, caller, c.nonce!, c.fingerprint);
  return repeat ? { ...caller, repeat } : caller;
}

/**
 * The first half of authentication, from the headers alone: the key, its project, the clock and
 * the nonce's form. A large body is read only after this (see claimNonce for the second half).
 */
export async function verifyRunnerKey(core: Core, c: Omit<RunnerCredentials, 'fingerprint'>): Promise<RunnerCaller> {
  const secret = c.bearer;
  if (!secret) throw new UserError('DC_UNAUTHENTICATED', 'Send the runner API key as "Authorization: Bearer dc_...".');
  if (secret.startsWith(USER_TOKEN_PREFIX)) {
    throw new UserError('DC_WRONG_CREDENTIAL', 'This is a personal API token; the runner API takes a runner API key (dc_...).');
  }
  const found = secret.startsWith(RUNNER_KEY_PREFIX) ? await core.store.findRunnerKeyWithProject(hashSecret(secret)) : undefined;
  if (!found) throw new UserError('DC_UNAUTHENTICATED', 'Unknown runner API key. Check DJANGOCOMMAND_API_KEY.');
  const { key, project } = found;
  const actor: Actor = { type: 'runner', id: key.id, label: `runner ${c.address} (key ${key.prefix}…)`, address: c.address };
  if (key.revokedAt !== null || !project) {
    await audit(core, actor, { action: 'runner.auth', projectId: key.projectId, outcome: 'denied', details: { reason: 'revoked key' } });
    throw new UserError('DC_UNAUTHENTICATED', `Runner API key ${key.prefix}… was revoked. Create a new one for this project.`);
  }
  const now = core.now();
  const ts = Number(c.timestamp);
  const window = core.settings.replayWindowSeconds;
  if (!c.timestamp || !Number.isFinite(ts) || Math.abs(now / 1000 - ts) > window) {
    await audit(core, actor, { action: 'runner.auth', projectId: project.id, outcome: 'denied', details: { reason: 'stale timestamp', timestamp: c.timestamp ?? null } });
    throw new UserError(
      'DC_STALE_REQUEST',
      `X-Request-Timestamp must be the current unix time within ${window} s; check the clock of the runner host.`,
    );
  }
  if (!c.nonce || !UUID.test(c.nonce)) throw new UserError('DC_STALE_REQUEST', 'X-Request-Nonce must be a UUID.');
  return { key, project, address: c.address, actor };
}

/** Records a nonce only if it is fresh; false (and nothing recorded) when it was seen before. */
export async function reserveNonce(core: Core, caller: RunnerCaller, nonce: string, fingerprint: string): Promise<boolean> {
  return (await core.store.recordNonce(caller.key.id, nonce.toLowerCase(), core.now(), fingerprint)).fresh;
}

/** Fingerprint of a request whose body is still to be read: a later retry or replay of its nonce is judged once it is. */
export const PENDING_FINGERPRINT = 'pending';

/**
 * Records the request's nonce with its fingerprint. Undefined for a fresh nonce; the stored answer
 * for a retry of a request already answered (send it again: nothing happens twice).
 */
export async function claimNonce(core: Core, caller: RunnerCaller, nonce: string, fingerprint: string): Promise<RepeatedAnswer | undefined> {
  const seen = await core.store.recordNonce(caller.key.id, nonce.toLowerCase(), core.now(), fingerprint);
  if (seen.fresh) return undefined;
  // The Python client retries a request whose answer it lost with the same nonce: the same
  // request gets the same answer, and nothing happens twice. Anything else is a replay.
  if (seen.fingerprint === fingerprint && seen.response) return seen.response;
  if (!seen.response && seen.fingerprint === fingerprint) {
    // The same request, never answered: its first attempt was cut off (a server died between
    // recording the nonce and the answer). Handled again: every v1 request but output/ changes
    // state conditionally, so nothing happens twice.
    return undefined;
  }
  if (!seen.response && seen.fingerprint === PENDING_FINGERPRINT) {
    // output/ whose first attempt never got as far as reading its body: this body was read to
    // compare it, so it cannot be stored now. Forgotten, the nonce lets the next retry through
    // (parts stored already are skipped).
    await core.store.forgetUnansweredNonce(caller.key.id, nonce.toLowerCase(), seen.seenAt);
    throw new UserError('DC_RETRY', 'An earlier attempt of this request has no answer; send it again.');
  }
  await audit(core, caller.actor, { action: 'runner.auth', projectId: caller.project.id, outcome: 'denied', details: { reason: 'replayed nonce' } });
  throw new UserError('DC_REPLAYED_REQUEST', 'This request nonce was already used; each request needs a fresh X-Request-Nonce.');
}

/**
 * A request that failed on the server's side may be retried by the client with the same
 * nonce; forgetting the nonce of a failed request lets that retry through.
 */
export async function releaseNonce(core: Core, caller: RunnerCaller, nonce: string): Promise<void> {
  await core.store.forgetNonce(caller.key.id, nonce.toLowerCase());
}

/** Keeps the answer to a request, for its retries. */
export async function rememberAnswer(core: Core, caller: RunnerCaller, nonce: string, answer: RepeatedAnswer, fingerprint?: string): Promise<void> {
  await core.store.saveNonceResponse(caller.key.id, nonce.toLowerCase(), answer.status, answer.body, fingerprint);
}

/**
 * Sightings this server wrote lately, per runner: a v1 runner polls every 2 s, and its "last
 * seen" needs writing only every few seconds, as a v2 runner's pongs (sightingWriteEveryMs).
 * Runner rows are never deleted, and change only through sightings: the row kept is still right.
 */
const recentSightings = new WeakMap<Core, { byRunner: Map<string, { runner: Runner; writtenAt: number }>; sweptAt: number }>();

async function sight(core: Core, caller: RunnerCaller, versions?: HeartbeatRequest): Promise<Runner> {
  const at = core.now();
  let recent = recentSightings.get(core);
  if (!recent) recentSightings.set(core, (recent = { byRunner: new Map(), sweptAt: at }));
  const every = sightingWriteEveryMs(core.settings.runnerOfflineAfterMs);
  const key = `${caller.key.id}\n${caller.address}`;
  const known = recent.byRunner.get(key);
  // A heartbeat carries the runner's versions: always written.
  if (!versions && known && at - known.writtenAt >= 0 && at - known.writtenAt < every) return { ...known.runner, lastSeenAt: at };
  const runner = await core.store.sightRunner({
    projectId: caller.project.id,
    keyId: caller.key.id,
    address: caller.address,
    protocol: 'v1',
    at,
    versions: versions && {
      runnerVersion: versions.runner_version,
      pythonVersion: versions.python_version,
      djangoVersion: versions.django_version,
      commandsHash: versions.commands_hash,
    },
  });
  if (at - recent.sweptAt >= every) {
    for (const [k, r] of recent.byRunner) if (at - r.writtenAt >= every) recent.byRunner.delete(k);
    recent.sweptAt = at;
  }
  recent.byRunner.set(key, { runner, writtenAt: at });
  if (runner.firstSeenAt === at && versions) {
    await audit(core, caller.actor, {
      action: 'runner.connect',
      projectId: caller.project.id,
      details: { runner_id: runner.id, runner_version: versions.runner_version, python: versions.python_version, django: versions.django_version },
    });
  }
  return runner;
}

export async function heartbeat(core: Core, caller: RunnerCaller, body: HeartbeatRequest) {
  await sight(core, caller, body);
  const project = (await core.store.getProject(caller.project.id)) ?? caller.project;
  const pending = await core.store.countExecutions(project.id, ['queued', 'dispatched']);
  return {
    ok: true as const,
    commands_in_sync: project.commandsHash !== '' && project.commandsHash === body.commands_hash,
    pending_executions: pending,
    runner_state: 'active' as const,
  };
}

export async function syncCommands(core: Core, caller: RunnerCaller, body: CommandsSyncRequest) {
  await sight(core, caller);
  const hash = await replaceCatalogue(core, caller, body.commands);
  return { ok: true as const, synced_count: body.commands.length, commands_hash: hash };
}

/** The answer to an idle poll, byte for byte what the pending/ route serialises for `{ executions: [] }`. */
export const IDLE_POLL_ANSWER = '{"executions":[]}';

/**
 * Answers a poll of a project with no work before its handler runs: the nonce is recorded with
 * its answer in one statement, then the runner is sighted. Most polls of a fleet are idle; this
 * spares each the statement that saves the answer after. Undefined when the project may have
 * work, or when the nonce was seen before: the usual path claims it (a retry, a replay) and
 * handles the request.
 */
export async function answerIdlePoll(core: Core, caller: RunnerCaller, nonce: string, fingerprint: string): Promise<string | undefined> {
  if (await dispatchableProjects(core).mayHaveWork(caller.project.id)) return undefined;
  const seen = await core.store.recordNonce(caller.key.id, nonce.toLowerCase(), core.now(), fingerprint, { status: 200, body: IDLE_POLL_ANSWER });
  if (!seen.fresh) return undefined;
  try {
    await sight(core, caller);
  } catch (err) {
    // A request that failed on the server's side is handled again when retried, not answered from its record.
    await releaseNonce(core, caller, nonce).catch(() => undefined);
    throw err;
  }
  return IDLE_POLL_ANSWER;
}

export async function pending(core: Core, caller: RunnerCaller): Promise<{ executions: PendingExecution[] }> {
  const runner = await sight(core, caller);
  if (!(await dispatchableProjects(core).mayHaveWork(caller.project.id))) return { executions: [] };
  const items = await core.store.listDispatchable(caller.project.id, PENDING_BATCH, runner.id);
  const now = core.now();
  // Protocol v1 cannot carry read-only mode: the Python runner would run it writable. Left for a v2 runner.
  const offered = items.filter((e) => !e.readOnly);
  // Offered, not started: it stays takeable by any runner of the project until one calls start/.
  // Marked side by side: each waits for a commit.
  await Promise.all(offered.filter((e) => e.status === 'queued').map((e) => transition(core, e.id, 'dispatched', { runnerId: runner.id, dispatchedAt: now }, { from: ['queued'] })));
  return { executions: offered.map((e) => ({ id: e.id, command: e.command, args: e.args, timeout: e.timeoutSeconds, use_metadata_only_mode: e.metadataOnly })) };
}

async function executionOf(core: Core, caller: RunnerCaller, id: string): Promise<Execution> {
  const e = UUID.test(id) ? await core.store.getExecution(id.toLowerCase()) : undefined;
  // Another project's execution is reported as unknown, so keys cannot probe each other.
  if (!e || e.projectId !== caller.project.id) throw new UserError('DC_UNKNOWN_EXECUTION', `No execution ${id} in this project.`);
  return e;
}

export async function start(core: Core, caller: RunnerCaller, id: string) {
  const runner = await sight(core, caller);
  const e = await executionOf(core, caller, id);
  if (e.readOnly) {
    throw new UserError('DC_READ_ONLY_UNSUPPORTED', `Execution ${id} runs in read-only database mode, which a v1 runner cannot enforce: it waits for a v2 runner.`);
  }
  // Handed to a v2 runner (in a project served by both): that runner has it and may be starting it.
  if (e.status === 'dispatched' && e.runnerId !== null && e.runnerId !== runner.id && (await core.store.getRunner(e.runnerId))?.protocol !== 'v1') {
    throw new UserError('DC_INVALID_TRANSITION', `Execution ${id} cannot start: it was handed to another runner.`, { status: e.status });
  }
  // No "already started by you" shortcut: two runners sharing a key and an address (NAT, one
  // host) would both be told to run it. start/ is the claim, and only one claim wins. From the
  // status read above only: queued meanwhile handed to a v2 runner is not taken from it.
  const started = await transition(
    core,
    e.id,
    'running',
    { runnerId: runner.id, startedAt: core.now() },
    {
      from: [e.status === 'queued' ? 'queued' : 'dispatched'],
      audit: { actor: caller.actor, action: 'execution.start', details: { command: e.command, args: e.args, runner_id: runner.id } },
    },
  );
  if (!started) {
    const current = await executionOf(core, caller, id);
    const why = current.status === 'running' ? 'another runner started it' : `it is ${current.status}`;
    throw new UserError('DC_INVALID_TRANSITION', `Execution ${id} cannot start: ${why}.`, { status: current.status });
  }
  return { ok: true as const, status: started.status };
}

/** A v1 chunk's own fields, and one part of its text (see src/server/v1OutputBody.ts). */
export interface V1ChunkHeader {
  chunkNumber: number;
  isStderr: boolean;
}
export interface V1ChunkPart {
  /** Text, or its UTF-8 bytes (stored as they are). */
  data: string | Uint8Array;
  lineTimes: Array<[number, number]>;
}

/**
 * Opens an execution's output for one v1 chunk: checks the execution first (before any of a large
 * body is read), then stores the chunk's parts as they arrive and counts the chunk when whole.
 * A retry stores nothing twice: parts already stored are skipped, a whole chunk is a duplicate.
 */
export async function openOutput(core: Core, caller: RunnerCaller, id: string) {
  await sight(core, caller);
  const e = await executionOf(core, caller, id);
  if (e.startedAt === null) {
    throw new UserError('DC_INVALID_TRANSITION', `Execution ${id} has not started; call start/ first.`, { status: e.status });
  }
  return {
    async part(header: V1ChunkHeader, part: V1ChunkPart, index: number): Promise<void> {
      const piece = { stream: header.isStderr ? ('stderr' as const) : ('stdout' as const), data: part.data, lineTimes: part.lineTimes, receivedAt: core.now() };
      if (await core.store.appendV1Part(e.id, header.chunkNumber, index, piece)) {
        core.notifier.publish(topics.execution(e.id));
        observe(core, (o) => o.outputStored?.(e, dataBytes(part.data), header.chunkNumber === 1 && index === 0, core.now()));
      }
    },
    async complete(header: V1ChunkHeader) {
      const fresh = await core.store.completeV1Chunk(e.id, header.chunkNumber);
      if (fresh) core.notifier.publish(topics.execution(e.id));
      return { ok: true as const, duplicate: !fresh };
    },
  };
}

export async function complete(core: Core, caller: RunnerCaller, id: string, body: { exit_code: number; status: RunnerCompletion }) {
  const runner = await sight(core, caller);
  const e = await executionOf(core, caller, id);
  const refusal = body.exit_code === -1 && body.status === 'failed' ? await findPolicyRefusal(core, e) : undefined;
  const status = finalStatus({
    reported: body.status,
    exitCode: body.exit_code,
    refusedByPolicy: refusal !== undefined,
    timeoutRequested: e.cancelReason === 'timeout',
  });
  const final = await finishExecution(core, caller.actor, e, {
    status,
    exitCode: body.exit_code,
    reason: refusal ?? null,
    runnerId: runner.id,
    reported: body.status,
  });
  return { ok: true as const, status: final };
}

/** The v1 runner reports a policy refusal as a failure whose first stderr chunk explains it. */
async function findPolicyRefusal(core: Core, e: Execution): Promise<string | undefined> {
  const first = await core.store.readOutput(e.id, 0, 3);
  const chunk = first.find((c) => c.stream === 'stderr' && V1_REJECTION_MARKER.test(c.data));
  if (!chunk) return undefined;
  const reason = /^Reason: (.*)$/m.exec(chunk.data)?.[1];
  return `refused by the runner's policy${reason ? `: ${reason}` : ''}`;
}

export async function cancelStatus(core: Core, caller: RunnerCaller, id: string) {
  await sight(core, caller);
  const e = await executionOf(core, caller, id);
  // A runner still running something the server gave up on (cancelled, lost) is told to stop.
  const over = isTerminal(e.status);
  return { cancel_requested: e.cancelRequestedAt !== null || over, force_kill: e.cancelForce };
}
