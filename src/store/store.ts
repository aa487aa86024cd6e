/**
 * The one storage port. The domain core and the HTTP layer talk to storage only through this
 * interface; kyselyStore.ts implements it once, over SQLite or PostgreSQL (the differences are
 * capability flags in dialects.ts). Every method is atomic: nothing is ever half-written.
 */
import type {
  ApiToken,
  AuditEvent,
  Command,
  Execution,
  NewAuditEvent,
  NewOutputChunk,
  OutputChunk,
  Project,
  Runner,
  RunnerKey,
  User,
  CancelReason,
  Session,
  Membership,
} from '../domain/model.js';
import type { ExecutionStatus } from '../domain/execution.js';
import type { ScheduleStore } from './scheduleStore.js';
import type { NotificationStore } from './notificationStore.js';
import type { RetentionStore } from './retentionStore.js';
import type { OperationsStore } from './operationsStore.js';
import type { AuditChainStore } from './auditChainStore.js';
import type { ShellStore } from './shellStore.js';
import type { AccessStore } from './accessStore.js';
import type { CommandSettingsStore } from './commandSettingsStore.js';
import type { ApprovalStore } from './approvalStore.js';
import type { OidcStore } from './oidcStore.js';

/** A personal token with the person it acts for (undefined when that row is gone) and their projects. */
export interface TokenHolder {
  token: ApiToken;
  user: User | undefined;
  memberships: Membership[];
}

export interface Page<T> {
  items: T[];
  /** Opaque; pass back as `cursor` for the next page, null when there is none. */
  nextCursor: string | null;
}

export interface ExecutionFilter {
  projectId?: string;
  /** Only these projects (what the caller may see); empty: none. */
  projectIds?: readonly string[];
  command?: string;
  statuses?: ExecutionStatus[];
  createdById?: string;
  createdAfter?: number;
  createdBefore?: number;
}

export interface AuditFilter {
  projectId?: string;
  /** Only events of these projects (what the caller may see; server-wide events are not among them); empty: none. */
  projectIds?: readonly string[];
  executionId?: string;
  action?: string;
  actorId?: string;
  actorType?: string;
  after?: number;
  before?: number;
}

export interface RunnerSighting {
  projectId: string;
  keyId: string;
  address: string;
  protocol: 'v1' | 'v2';
  /** v2 runners' own id; '' for v1. */
  instance?: string;
  hostname?: string;
  maxConcurrency?: number;
  at: number;
  versions?: { runnerVersion: string; pythonVersion: string; djangoVersion: string; commandsHash: string };
}

export interface ExecutionPatch {
  status?: ExecutionStatus;
  statusReason?: string | null;
  exitCode?: number | null;
  runnerId?: string | null;
  dispatchedAt?: number | null;
  startedAt?: number | null;
  finishedAt?: number | null;
  cancelRequestedAt?: number | null;
  cancelForce?: boolean;
  cancelReason?: CancelReason | null;
  outputExpectedSeq?: number | null;
  /** An approved execution's start deadline counts from its approval. */
  startDeadline?: number | null;
}

export type NonceRecord =
  | { fresh: true }
  | { fresh: false; fingerprint: string; seenAt: number; response: { status: number; body: string } | null };

/** Made, or refused by the concurrency limit (naming a few of the active executions, oldest first). */
export type CreateExecutionResult = { created: true } | { created: false; active: Execution[] };

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Schedules and their occurrences (scheduleStore.ts). */
  readonly schedules: ScheduleStore;
  /** Notification channels, the outbox and deliveries (notificationStore.ts). */
  readonly notifications: NotificationStore;
  /** Audited shells: sessions, recordings, per-project settings (shellStore.ts). */
  readonly shells: ShellStore;
  /** Project members, CI tokens, users' and credentials' states (accessStore.ts). */
  readonly access: AccessStore;
  /** Per-command settings a project admin chose (commandSettingsStore.ts). */
  readonly commandSettings: CommandSettingsStore;
  /** Four-eyes approval requests (approvalStore.ts). */
  readonly approvals: ApprovalStore;
  /** Single sign-on: linked provider identities, pending sign-ins (oidcStore.ts). */
  readonly oidc: OidcStore;
  /** Per-project retention limits and purging (retentionStore.ts). */
  readonly retention: RetentionStore;
  /** Cheap reads for readiness and metrics (operationsStore.ts). */
  readonly operations: OperationsStore;
  /** The audit log's hash chain: verification, archiving, signed anchors (auditChainStore.ts). */
  readonly auditChain: AuditChainStore;
  migrate(): Promise<void>;
  close(): Promise<void>;

  // People and their credentials
  createUser(user: User): Promise<void>;
  getUser(id: string): Promise<User | undefined>;
  findUserByEmail(email: string): Promise<User | undefined>;
  listUsers(): Promise<User[]>;
  countUsers(): Promise<number>;
  createToken(token: ApiToken): Promise<void>;
  /** The personal token with this hash, its person and their memberships, read in one statement (every API request does). */
  findTokenByHash(hash: string): Promise<TokenHolder | undefined>;
  touchToken(id: string, at: number): Promise<void>;
  listTokens(userId: string): Promise<ApiToken[]>;
  revokeToken(id: string, userId: string, at: number): Promise<boolean>;
  getToken(id: string): Promise<ApiToken | undefined>;
  createSession(session: Session): Promise<void>;
  findSession(idHash: string): Promise<Session | undefined>;
  deleteSession(idHash: string): Promise<void>;
  pruneSessions(now: number): Promise<number>;
  /**
   * Counts one sign-in attempt for `keyHash` in a window of `windowMs` that opens with the first
   * attempt; returns the attempts in the current window, this one included, and when it closes.
   * Atomic, so simultaneous attempts (through any replica) are all counted.
   */
  recordLoginAttempt(keyHash: string, now: number, windowMs: number): Promise<{ attempts: number; windowEndsAt: number }>;
  clearLoginAttempts(keyHash: string): Promise<void>;
  pruneLoginAttempts(now: number): Promise<number>;

  // Projects and runner keys
  createProject(project: Project): Promise<void>;
  getProject(id: string): Promise<Project | undefined>;
  findProjectByName(name: string): Promise<Project | undefined>;
  listProjects(): Promise<Project[]>;
  createRunnerKey(key: RunnerKey): Promise<void>;
  findRunnerKeyByHash(hash: string): Promise<RunnerKey | undefined>;
  /** The key and its project in one read (every runner request starts with it); project undefined if gone. */
  findRunnerKeyWithProject(hash: string): Promise<{ key: RunnerKey; project: Project | undefined } | undefined>;
  findRunnerKeyByPrefix(prefix: string): Promise<RunnerKey | undefined>;
  listRunnerKeys(projectId: string): Promise<RunnerKey[]>;
  revokeRunnerKey(id: string, at: number): Promise<boolean>;
  /** Of these key ids, those revoked (or gone): one query for every connected runner. */
  revokedRunnerKeys(ids: readonly string[]): Promise<string[]>;
  /** Runner keys revoked at or after `since` (a fleet's connections check this each second, not every key). */
  runnerKeysRevokedSince(since: number): Promise<string[]>;

  /**
   * Records a request nonce with the request's fingerprint. When the key already used it, returns
   * what was recorded then (a retry of the same request gets the answer it was given). With
   * `answer`, a fresh nonce is recorded answered already: one statement for a request whose
   * answer is known before it is handled (an idle poll).
   */
  recordNonce(keyId: string, nonce: string, at: number, fingerprint: string, answer?: { status: number; body: string }): Promise<NonceRecord>;
  /** Keeps the answer for retries; `fingerprint` replaces the recorded one (known only once a streamed body is read). */
  saveNonceResponse(keyId: string, nonce: string, status: number, body: string, fingerprint?: string): Promise<void>;
  forgetNonce(keyId: string, nonce: string): Promise<void>;
  /** Forgets a nonce recorded at `seenAt` that still has no answer; false when it was answered or taken meanwhile. */
  forgetUnansweredNonce(keyId: string, nonce: string, seenAt: number): Promise<boolean>;
  pruneNonces(olderThan: number): Promise<number>;

  // Runners and their commands
  sightRunner(sighting: RunnerSighting): Promise<Runner>;
  /** "Last seen" for runners already sighted (their pings), in one statement per few hundred. */
  markRunnersSeen(runnerIds: readonly string[], at: number): Promise<void>;
  /** Projects with an execution in one of `statuses`: one indexed read for a whole fleet (few executions wait at any time). */
  projectsWithStatus(statuses: readonly ExecutionStatus[]): Promise<string[]>;
  getRunner(id: string): Promise<Runner | undefined>;
  /** The runner said it is stopping: offline from `at` until it is seen again. */
  markRunnerStopped(id: string, at: number): Promise<void>;
  listRunners(projectId: string): Promise<Runner[]>;
  /** Replaces the project's catalogue in one transaction and stores its hash. */
  replaceCommands(projectId: string, commands: Command[], hash: string): Promise<void>;
  listCommands(projectId: string): Promise<Command[]>;
  getCommand(projectId: string, name: string): Promise<Command | undefined>;
  /** The server's "read-only by default" of a command; false when the project has no such command. */
  setCommandReadOnly(projectId: string, name: string, readOnly: boolean): Promise<boolean>;
  setCommandConcurrency(projectId: string, name: string, max: number | null): Promise<boolean>;

  // Executions
  /**
   * Inserts the execution unless `limit` executions of the same command of the same project
   * are already active; checked and written atomically, also across server replicas.
   */
  createExecution(execution: Execution, limit: number): Promise<CreateExecutionResult>;
  /**
   * Many at once, in one transaction (a schedule burst): each item is checked against its limit
   * counting the active executions and those of this batch inserted before it; results in order.
   */
  createExecutions(items: ReadonlyArray<{ execution: Execution; limit: number }>): Promise<CreateExecutionResult[]>;
  getExecution(id: string): Promise<Execution | undefined>;
  /** Those of `ids` that exist, in no particular order. */
  getExecutions(ids: readonly string[]): Promise<Execution[]>;
  listExecutions(filter: ExecutionFilter, limit: number, cursor?: string): Promise<Page<Execution>>;
  countExecutions(projectId: string, statuses: ExecutionStatus[]): Promise<number>;
  /**
   * What v1 runner `runnerId` is offered: queued executions of the project and those offered to
   * v1 runners but not started; first the queued ones and its own offers, then other runners'
   * offers, each part oldest first.
   */
  listDispatchable(projectId: string, limit: number, runnerId: string): Promise<Execution[]>;
  /** How many executions of the project are queued, counting up to `limit`: a cheap look before claiming. */
  countQueued(projectId: string, limit: number): Promise<number>;
  /**
   * Moves up to `limit` of the project's oldest queued executions (read-only ones only if
   * `readOnlyToo`) to `dispatched` for one runner, in one statement; returns them, oldest first.
   * Rows another transaction is claiming are skipped, not waited for: replicas claiming at once
   * share the queue instead of racing for its head. Callers go through core/executionState.ts.
   */
  claimQueued(projectId: string, limit: number, patch: { runnerId: string; dispatchedAt: number }, readOnlyToo: boolean): Promise<Execution[]>;
  /** Executions dispatched to this runner and not started yet. */
  listDispatchedTo(runnerId: string): Promise<Execution[]>;
  /**
   * Applies `patch` only if the execution is in one of `from`; returns the updated execution
   * or undefined when it was not in one of those states (someone else moved it first), or not
   * in `projectId` when that is given.
   */
  updateExecution(id: string, from: readonly ExecutionStatus[], patch: ExecutionPatch, projectId?: string): Promise<Execution | undefined>;
  /** Keeps how a lost execution really ended; false when it is not lost or already has one. */
  recordLateEnd(id: string, end: { status: ExecutionStatus; exitCode: number | null; at: number }): Promise<boolean>;
  /** Running/dispatched executions held by runners last seen before `cutoff`. */
  listHeldByRunnersSeenBefore(cutoff: number): Promise<Execution[]>;
  /** Queued or offered executions whose start deadline has passed at `now` (at most 500 a call). */
  listPastStartDeadline(now: number): Promise<Execution[]>;
  /** Running executions whose timeout (plus `graceMs`) has passed at `now`. */
  listOverdue(now: number, graceMs: number): Promise<Execution[]>;

  // Output
  /** Stores the chunk unless its number is already stored; true when it was new. */
  appendOutput(chunk: NewOutputChunk): Promise<boolean>;
  /**
   * v1: stores part `part` (0, 1, ...) of runner chunk `chunkNumber` under the next stored seq,
   * unless that part is stored already or the chunk is complete (a retry): parts of one chunk are
   * written as its body streams in. False when it was stored before.
   */
  appendV1Part(executionId: string, chunkNumber: number, part: number, piece: Omit<NewOutputChunk, 'executionId' | 'seq'>): Promise<boolean>;
  /** v1: every part of the chunk arrived; counts it in the runner's numbering. False when it was complete already. */
  completeV1Chunk(executionId: string, chunkNumber: number): Promise<boolean>;
  readOutput(executionId: string, afterSeq: number, limit: number): Promise<OutputChunk[]>;

  // Audit
  /** Appends the event to the hash chain (one transaction; serialised across server processes). */
  appendAudit(event: NewAuditEvent): Promise<AuditEvent>;
  /** Appends several events in one transaction, in order. */
  appendAudits(events: readonly NewAuditEvent[]): Promise<AuditEvent[]>;
  listAudit(filter: AuditFilter, limit: number, cursor?: string): Promise<Page<AuditEvent>>;
}
