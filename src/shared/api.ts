/**
 * The REST API's wire types (`/api/v1/`), defined once as schemas: the server validates and
 * documents (OpenAPI) with them, and the CLI reads responses through the same types.
 * Times are ISO 8601 strings in UTC; durations are milliseconds.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Nullable, StringEnum } from './wireSchemas.js';
import { EXECUTION_STATUSES } from '../domain/execution.js';

const Time = Type.String({ format: 'date-time' });

export const ErrorBody = Type.Object({
  error: Type.String({ description: 'What went wrong and how to fix it.' }),
  code: Type.String({ description: 'Stable error code, e.g. DC_UNKNOWN_COMMAND.' }),
  details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
});
export type ErrorBody = Static<typeof ErrorBody>;

export const ExecutionStatusSchema = StringEnum(EXECUTION_STATUSES);

export const ExecutionView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  project: Type.String(),
  project_id: Type.String(),
  command: Type.String(),
  args: Type.String({ description: 'Arguments as one shell-quoted string.' }),
  argv: Type.Array(Type.String()),
  status: ExecutionStatusSchema,
  status_reason: Nullable(Type.String()),
  exit_code: Nullable(Type.Integer()),
  timeout: Type.Integer({ description: 'Seconds.' }),
  start_deadline: Nullable(Type.String({ format: 'date-time', description: 'When it ends expired if no runner has started it.' })),
  schedule_id: Nullable(Type.String({ description: 'The schedule that created it, if any.' })),
  read_only: Type.Boolean({ description: 'Runs in read-only database mode: every write to the database is refused (asked for, or a default of the command).' }),
  created_at: Time,
  created_by: Type.String(),
  runner_id: Nullable(Type.String()),
  dispatched_at: Nullable(Time),
  started_at: Nullable(Time),
  finished_at: Nullable(Time),
  duration_ms: Nullable(Type.Integer()),
  cancel_requested: Type.Boolean(),
  cancel_force: Type.Boolean(),
  output_bytes: Type.Integer(),
  output_last_seq: Type.Integer({ description: 'The highest output chunk number stored (0: none yet): read the tail from there.' }),
  output_missing_chunks: Type.Integer({ description: 'Output chunks that never reached the server (numbers skipped, or fewer than the runner said it sent).' }),
  output_incomplete: Type.Boolean({ description: 'The execution ended and output_missing_chunks > 0: the stored output is not the whole output.' }),
  late_status: Nullable(ExecutionStatusSchema),
  late_exit_code: Nullable(Type.Integer({ description: 'For a lost execution whose runner later reported how it ended: that end (the status stays lost).' })),
});
export type ExecutionView = Static<typeof ExecutionView>;

/** What a create with `?wait=` answers: the execution, with its last lines once it has ended. */
export const WaitedExecutionView = Type.Composite([ExecutionView, Type.Object({ output_tail: Type.Optional(Type.String({ description: 'The last lines of output (none for metadata-only commands).' })) })]);
export type WaitedExecutionView = Static<typeof WaitedExecutionView>;

export const CreateExecutionRequest = Type.Object(
  {
    command: Type.String({ minLength: 1, maxLength: 200 }),
    argv: Type.Optional(Type.Array(Type.String({ maxLength: 10_000 }), { maxItems: 1000 })),
    args: Type.Optional(Type.String({ maxLength: 65_536, description: 'Arguments as one string, split with POSIX shell rules.' })),
    timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 604_800, description: 'Seconds.' })),
    start_timeout: Type.Optional(Type.Integer({ minimum: 1, maximum: 604_800, description: 'Seconds a runner has to start it; then it ends expired and never starts (default: DJANGOCOMMAND_START_TIMEOUT).' })),
    read_only: Type.Optional(
      Type.Boolean({
        description:
          'Run in read-only database mode (every write refused, the command exits non-zero). false does not make a command that is read-only by default writable. Needs a v2 runner (DC_READ_ONLY_UNSUPPORTED when only v1 runners are online).',
      }),
    ),
  },
  { additionalProperties: false },
);
export type CreateExecutionRequest = Static<typeof CreateExecutionRequest>;

export const CancelRequest = Type.Object({ force: Type.Optional(Type.Boolean()) }, { additionalProperties: false });
export type CancelRequest = Static<typeof CancelRequest>;

export const RunnerView = Type.Object({
  id: Type.String(),
  address: Type.String(),
  hostname: Type.String(),
  max_concurrency: Nullable(Type.Integer()),
  protocol: Type.String(),
  online: Type.Boolean(),
  runner_version: Type.String(),
  python_version: Type.String(),
  django_version: Type.String(),
  first_seen_at: Time,
  last_seen_at: Time,
});
export type RunnerView = Static<typeof RunnerView>;

export const ProjectView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  created_at: Time,
  commands_hash: Type.String(),
  runners_online: Type.Integer(),
  active_executions: Type.Integer(),
});
export type ProjectView = Static<typeof ProjectView>;

export const RunnerKeyView = Type.Object({
  id: Type.String(),
  name: Type.String(),
  prefix: Type.String({ description: 'The first characters of the key, to tell keys apart.' }),
  created_at: Time,
  revoked_at: Nullable(Time),
});
export type RunnerKeyView = Static<typeof RunnerKeyView>;

export const CommandView = Type.Object({
  name: Type.String(),
  app_label: Type.String(),
  help_text: Type.String(),
  schema: Type.Union([Type.Unknown(), Type.Null()], { description: "argparse definition, when the runner sent one." }),
  refused: Nullable(Type.String({ description: "Why the runners' own policy refuses this command, and the setting that would allow it." })),
  max_concurrency: Type.Integer(),
  read_only: Type.Boolean({ description: 'Runs in read-only database mode by default (read_only_default or django_read_only).' }),
  read_only_default: Type.Boolean({ description: 'Read-only by default, set on the server (PATCH this command).' }),
  django_read_only: Type.Boolean({ description: 'Listed in DJANGOCOMMAND_READONLY_COMMANDS in the Django settings (change it there).' }),
  synced_at: Time,
});
export type CommandView = Static<typeof CommandView>;

export const UpdateCommandRequest = Type.Object(
  {
    max_concurrency: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1000 }))),
    read_only_default: Type.Optional(Type.Boolean({ description: 'true: every run of this command is in read-only database mode (a request cannot make it writable); false: only when asked for.' })),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const AuditEventView = Type.Object({
  id: Type.Integer(),
  at: Time,
  actor_type: Type.String(),
  actor_id: Nullable(Type.String()),
  actor: Type.String(),
  address: Nullable(Type.String()),
  action: Type.String(),
  project_id: Nullable(Type.String()),
  execution_id: Nullable(Type.String()),
  outcome: Type.String(),
  details: Type.Record(Type.String(), Type.Unknown()),
});
export type AuditEventView = Static<typeof AuditEventView>;

/** The newest check of the audit log's hash chain (`djangocommand admin audit verify`), or none yet. */
export const AuditChainView = Type.Object({
  last_verification: Nullable(
    Type.Object({
      at: Time,
      ok: Type.Boolean(),
      events: Type.Integer({ description: 'Events checked.' }),
      head_seq: Type.Integer({ description: 'The last event of the chain found whole.' }),
      problem: Nullable(Type.String({ description: 'The first event changed, removed or inserted, when not ok.' })),
    }),
  ),
});
export type AuditChainView = Static<typeof AuditChainView>;

export const OutputChunkView = Type.Object({
  seq: Type.Integer(),
  stream: StringEnum(['stdout', 'stderr'] as const),
  data: Type.String(),
  line_times: Type.Array(Type.Tuple([Type.Integer(), Type.Number()]), { description: '[character offset, unix ms] of each line start.' }),
});
export type OutputChunkView = Static<typeof OutputChunkView>;

export const pageOf = <T extends TSchema>(item: T) => Type.Object({ items: Type.Array(item), next_cursor: Nullable(Type.String()) });
export interface PageView<T> {
  items: T[];
  next_cursor: string | null;
}

export const CreateProjectRequest = Type.Object({ name: Type.String() }, { additionalProperties: false });
export const CreateKeyRequest = Type.Object({ name: Type.Optional(Type.String({ maxLength: 100 })) }, { additionalProperties: false });

/** Server-Sent Events on /executions/{id}/events: `output` (OutputChunkView), `status` (ExecutionView), `end`. */
/** Live output events; `revoked` ends a stream whose credential stopped working (its data is an ErrorBody). */
export const SSE_EVENTS = { output: 'output', status: 'status', end: 'end', revoked: 'revoked' } as const;
