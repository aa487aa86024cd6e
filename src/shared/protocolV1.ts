/**
 * Runner protocol v1: the HTTP+JSON wire format of the existing Python runner
 * (`djangocommand-runner`). Our server speaks it exactly; see ../shared/runner-protocol-v1.md.
 *
 * Every request carries `Authorization: Bearer dc_...`, `X-Request-Timestamp` (unix seconds)
 * and `X-Request-Nonce` (UUID4). Paths end with a slash. Errors are JSON objects whose
 * message is under `error` (the client also reads `detail`). The client retries
 * 429/5xx with the same headers, so every endpoint is idempotent.
 *
 * Lifecycle of one execution, as a v1 runner sees it:
 *   GET pending/ → POST executions/<id>/start/ → POST .../output/ (n times, chunk_number 1..n)
 *   → POST .../complete/, while polling GET .../cancel-status/ every 2 s.
 */
import { Type, type Static } from '@sinclair/typebox';

export const V1_PREFIX = '/api/runner';

/**
 * Bounds of what a runner sends, so nothing stored can break a reader later: a time is between
 * the epoch and the end of year 9999 (a date every reader can format), a count fits PostgreSQL's
 * `integer`, and a short label (a version, a hostname) has no control character.
 */
export const LATEST_UNIX_SECONDS = 253_402_300_799; // 9999-12-31T23:59:59Z
export const MAX_COUNT = 2_000_000_000;
export const NO_CONTROL_CHARACTERS = '^[^\\u0000-\\u001F\\u007F]*$';
const Label = (maxLength: number) => Type.String({ maxLength, pattern: NO_CONTROL_CHARACTERS });

export const HeartbeatRequest = Type.Object({
  runner_version: Label(100),
  python_version: Label(100),
  django_version: Label(100),
  commands_hash: Label(200),
});
export type HeartbeatRequest = Static<typeof HeartbeatRequest>;

export const HeartbeatResponse = Type.Object({
  ok: Type.Literal(true),
  commands_in_sync: Type.Boolean(),
  pending_executions: Type.Integer(),
  runner_state: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('suspended')])),
  suspension_reason: Type.Optional(Type.String()),
});
export type HeartbeatResponse = Static<typeof HeartbeatResponse>;

/**
 * One command as the runner reports it. `help_text` is the full argparse --help output. A name
 * may be any text (a command file may be called 名前.py) but a control character; that, and a
 * NUL in the help, the server refuses when the catalogue arrives (commandCatalogue.ts), with
 * the command and field named.
 */
export const SyncedCommand = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  app_label: Type.String({ maxLength: 200 }),
  help_text: Type.String({ maxLength: 200_000 }),
});
export type SyncedCommand = Static<typeof SyncedCommand>;

export const CommandsSyncRequest = Type.Object({
  commands: Type.Array(SyncedCommand, { maxItems: 5000 }),
});
export type CommandsSyncRequest = Static<typeof CommandsSyncRequest>;

export const CommandsSyncResponse = Type.Object({
  ok: Type.Literal(true),
  synced_count: Type.Integer(),
  commands_hash: Type.String(),
});
export type CommandsSyncResponse = Static<typeof CommandsSyncResponse>;

/** What pending/ hands the runner. `args` is one string the runner splits with shlex. */
export const PendingExecution = Type.Object({
  id: Type.String({ format: 'uuid' }),
  command: Type.String(),
  args: Type.String(),
  timeout: Type.Integer(),
  use_metadata_only_mode: Type.Boolean(),
});
export type PendingExecution = Static<typeof PendingExecution>;

export const PendingResponse = Type.Object({ executions: Type.Array(PendingExecution) });
export type PendingResponse = Static<typeof PendingResponse>;

/**
 * A segment with a timestamp starts a new line at that time; `timestamp: null` continues the
 * previous partial line of the same stream. `content` includes its line ending.
 */
export const OutputSegment = Type.Object({
  /** Unix seconds. */
  timestamp: Type.Union([Type.Number({ minimum: 0, maximum: LATEST_UNIX_SECONDS }), Type.Null()]),
  content: Type.String(),
});
export type OutputSegment = Static<typeof OutputSegment>;

export const OutputRequest = Type.Object({
  chunk_number: Type.Integer({ minimum: 1, maximum: MAX_COUNT }),
  is_stderr: Type.Boolean(),
  segments: Type.Array(OutputSegment),
});
export type OutputRequest = Static<typeof OutputRequest>;

export const V1CompletionStatus = Type.Union([
  Type.Literal('success'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
  Type.Literal('timed_out'),
]);
export type V1CompletionStatus = Static<typeof V1CompletionStatus>;

export const CompleteRequest = Type.Object({
  exit_code: Type.Integer({ minimum: -2_147_483_648, maximum: 2_147_483_647 }),
  status: V1CompletionStatus,
});
export type CompleteRequest = Static<typeof CompleteRequest>;

export const CancelStatusResponse = Type.Object({
  cancel_requested: Type.Boolean(),
  force_kill: Type.Boolean(),
});
export type CancelStatusResponse = Static<typeof CancelStatusResponse>;

export const OkResponse = Type.Object({ ok: Type.Literal(true) }, { additionalProperties: true });

/** How the runner tells the user its policy refused a command (first line of its stderr chunk). */
export const V1_REJECTION_MARKER = /^Command '[^']*' rejected by runner security policy\./;

export const V1_HEADERS = {
  timestamp: 'x-request-timestamp',
  nonce: 'x-request-nonce',
} as const;
