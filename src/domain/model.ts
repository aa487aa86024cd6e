/**
 * Domain records.
 *
 * Glossary (see PRODUCT.md "Words we use"):
 * - project: one Django deployment: one API key family, one command catalogue.
 * - runner key: the `dc_...` secret a runner authenticates with; identifies the project.
 * - runner: one agent process serving a project; v1 runners are told apart by key + address.
 * - command: a management command a runner reported, with its help text (and argparse schema
 *   when the runner sends one).
 * - execution: one run of a command; its states live in execution.ts.
 * - output chunk: a numbered piece of an execution's stdout or stderr; each number is stored once.
 * - user / token: a person, and a personal API token (`dct_...`) acting as that person.
 * - audit event: an append-only record of something a person, token or runner did.
 */
import type { ExecutionStatus } from './execution.js';
import type { ProjectRole } from './roles.js';

export type ActorType = 'user' | 'token' | 'runner' | 'system';

export interface Actor {
  type: ActorType;
  id: string | null;
  /** Human-readable: an email, "token <name> of <email>", "runner <address>". */
  label: string;
  address: string | null;
}

export interface User {
  id: string;
  email: string;
  passwordHash: string;
  /** Server-wide owner: manages users and projects, admin of every project. */
  isAdmin: boolean;
  createdAt: number;
  /** Set while the user may not sign in or use a token. */
  disabledAt: number | null;
  /** Removed: also gone from lists; the row stays so history stays attributed. */
  removedAt: number | null;
  /** A one-time password: the next sign-in must set a new one before anything else. */
  mustChangePassword: boolean;
}

export interface ApiToken {
  id: string;
  userId: string;
  name: string;
  prefix: string;
  tokenHash: string;
  createdAt: number;
  lastUsedAt: number | null;
  revokedAt: number | null;
  /** Only these projects (ids); null: every project its owner may see. */
  projectIds: string[] | null;
  /** At most viewer anywhere, and no owner powers. */
  readOnly: boolean;
  expiresAt: number | null;
}

/** A token for CI: one role in one project, no person behind it (`dct_...` like a personal one). */
export interface CiToken {
  id: string;
  projectId: string;
  name: string;
  role: ProjectRole;
  prefix: string;
  tokenHash: string;
  createdAt: number;
  /** Who made it (a label: the person may be removed later). */
  createdBy: string;
  expiresAt: number | null;
  lastUsedAt: number | null;
  revokedAt: number | null;
}

/** A person's role in a project. */
export interface Membership {
  projectId: string;
  userId: string;
  role: ProjectRole;
  createdAt: number;
  updatedAt: number;
}

/** A member with who they are, for lists. */
export interface MemberRow extends Membership {
  email: string;
  disabled: boolean;
}

/** A signed-in browser: the cookie holds the secret, the store its hash. */
export interface Session {
  idHash: string;
  userId: string;
  csrfToken: string;
  address: string | null;
  createdAt: number;
  expiresAt: number;
}

export interface Project {
  id: string;
  name: string;
  commandsHash: string;
  createdAt: number;
}

export interface RunnerKey {
  id: string;
  projectId: string;
  name: string;
  prefix: string;
  keyHash: string;
  createdAt: number;
  revokedAt: number | null;
}

export interface Runner {
  id: string;
  projectId: string;
  keyId: string;
  address: string;
  protocol: 'v1' | 'v2';
  /** '' for v1; the runner's own stable id for v2. */
  instance: string;
  hostname: string;
  maxConcurrency: number | null;
  runnerVersion: string;
  pythonVersion: string;
  djangoVersion: string;
  commandsHash: string;
  firstSeenAt: number;
  lastSeenAt: number;
  /** When it last said it was stopping; it is offline from then until it is seen again. */
  stoppedAt: number | null;
}

export interface Command {
  projectId: string;
  name: string;
  appLabel: string;
  helpText: string;
  /** argparse definition as JSON, when the runner sent one (v2 runners do). */
  schema: unknown | null;
  /** Set when the runner's own policy refuses the command: why, and the setting that would allow it. */
  refused: string | null;
  maxConcurrency: number | null;
  syncedAt: number;
  /** Read-only database mode by default, set on the server (kept across catalogue syncs). */
  readOnlyDefault: boolean;
  /** Listed in DJANGOCOMMAND_READONLY_COMMANDS, as the runner reported it. */
  djangoReadOnly: boolean;
}

export type CancelReason = 'user' | 'timeout';

export interface Execution {
  id: string;
  projectId: string;
  command: string;
  /** The arguments as one shell-quoted string (what a v1 runner receives). */
  args: string;
  argv: string[];
  status: ExecutionStatus;
  /** Why the execution is in its status, in words, when that is not obvious (lost, rejected). */
  statusReason: string | null;
  exitCode: number | null;
  timeoutSeconds: number;
  /** Unix ms after which, if no runner has started it, it ends `expired` and never starts. */
  startDeadline: number | null;
  /** The schedule that created it; null when a person or token asked for it. */
  scheduleId: string | null;
  metadataOnly: boolean;
  /** Runs in read-only database mode (requested, or a default of its command). */
  readOnly: boolean;
  createdAt: number;
  createdByType: ActorType;
  createdById: string | null;
  createdByLabel: string;
  runnerId: string | null;
  dispatchedAt: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  cancelRequestedAt: number | null;
  cancelForce: boolean;
  cancelReason: CancelReason | null;
  outputBytes: number;
  outputChunks: number;
  /** The highest output chunk number stored, 0 before any: where the tail of the output is. */
  outputLastSeq: number;
  /** How many chunks the runner said it produced (v2 `finished.last_seq`); null when unknown (v1). */
  outputExpectedSeq: number | null;
  /**
   * The runner's own numbering: its highest chunk number received whole, and how many it sent
   * whole. Stored seqs differ for v1, whose large chunks are stored as several parts.
   */
  runnerLastSeq: number;
  runnerChunks: number;
  /** How a `lost` execution really ended, when its runner reported it later (the status stays lost). */
  lateStatus: ExecutionStatus | null;
  lateExitCode: number | null;
}

export type OutputStream = 'stdout' | 'stderr';

export interface OutputChunk {
  executionId: string;
  seq: number;
  stream: OutputStream;
  data: string;
  /** Unix ms for each line that starts in this chunk, with its character offset in `data`. */
  lineTimes: Array<[offset: number, at: number]>;
  receivedAt: number;
}

/** A chunk to store: its data as text, or as the UTF-8 bytes it came in (stored without decoding). */
export type NewOutputChunk = Omit<OutputChunk, 'data'> & { data: string | Uint8Array };

export interface AuditEvent {
  id: number;
  at: number;
  actorType: ActorType;
  actorId: string | null;
  actorLabel: string;
  address: string | null;
  action: string;
  projectId: string | null;
  executionId: string | null;
  outcome: 'ok' | 'denied' | 'error';
  details: Record<string, unknown>;
}

export type NewAuditEvent = Omit<AuditEvent, 'id'>;

/**
 * How often a runner's "last seen" needs writing: often enough that a live runner never looks
 * offline (a quarter of `offlineAfterMs`), rarely enough that pings and polls do not each write.
 */
export function sightingWriteEveryMs(offlineAfterMs: number): number {
  return Math.min(15_000, offlineAfterMs / 4);
}

/** Online: heard from within `offlineAfterMs`, and not stopped since (a runner says when it stops). */
export function runnerOnline(r: Pick<Runner, 'lastSeenAt' | 'stoppedAt'>, now: number, offlineAfterMs: number): boolean {
  return now - r.lastSeenAt < offlineAfterMs && (r.stoppedAt === null || r.stoppedAt < r.lastSeenAt);
}
