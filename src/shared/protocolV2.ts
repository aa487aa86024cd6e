/**
 * Runner protocol v2: one outbound WebSocket per runner at /api/runner/v2/connect, authenticated
 * like v1 (Authorization: Bearer dc_..., X-Request-Timestamp, X-Request-Nonce on the upgrade).
 * JSON text frames, each with a `type`. What v1 polls for, v2 pushes.
 *
 *   runner → server                          server → runner
 *   hello (who, what it runs, unacked)  ──▶
 *                                       ◀──  welcome (commands_in_sync)
 *   commands (catalogue with schemas,   ──▶
 *     and DJANGOCOMMAND_SCHEDULES)
 *                                       ◀──  execute (an execution for this runner)
 *   started (pid, warm or cold)         ──▶
 *   output (seq n of an execution)      ──▶
 *                                       ◀──  ack (seq n is stored; drop it from the spool)
 *                                       ◀──  cancel (graceful or forced)
 *   finished (exit code, status)        ──▶
 *                                       ◀──  finished_ack (forget the execution)
 *   draining (stopping: no new work)    ──▶
 *
 * `output` travels as a binary frame (encodeOutputFrame): a small JSON header and the text's
 * UTF-8 bytes, so a megabyte of output is never JSON-escaped and parsed again.
 *
 * Nothing is lost: the runner keeps every output chunk and its `finished` in a spool on disk
 * until acknowledged, and after a reconnect sends again what was not. Each (execution, seq) is
 * stored once, so a resend duplicates nothing. A runner that vanishes mid-command makes the
 * execution `lost`; nothing is ever re-run by itself.
 */
import { isUtf8 } from 'node:buffer';
import { Type, type Static } from '@sinclair/typebox';
import { LATEST_UNIX_SECONDS, MAX_COUNT, NO_CONTROL_CHARACTERS } from './protocolV1.js';
import { ShellEcho, ShellExited, ShellModeChanged, ShellRefused, ShellStarted, ShellWritableRequest, type ShellServerMessage } from './shellProtocol.js';

export const V2_PATH = '/api/runner/v2/connect';
export const V2_PROTOCOL_VERSION = 2;

const Id = Type.String({ format: 'uuid' });
/** Unix ms, from the epoch to the end of year 9999 (see protocolV1.ts for why every number is bounded). */
const UnixMs = Type.Number({ minimum: 0, maximum: LATEST_UNIX_SECONDS * 1000 + 999 });
const Label = (maxLength: number) => Type.String({ maxLength, pattern: NO_CONTROL_CHARACTERS });
const ExitCode = Type.Union([Type.Integer({ minimum: -2_147_483_648, maximum: 2_147_483_647 }), Type.Null()]);

// ---- runner → server ---------------------------------------------------------------------------

export const Hello = Type.Object({
  type: Type.Literal('hello'),
  protocol: Type.Literal(V2_PROTOCOL_VERSION),
  /** Stable across restarts of the same runner (kept in its state folder). */
  runner_id: Id,
  hostname: Label(255),
  runner_version: Label(100),
  python_version: Label(100),
  django_version: Label(100),
  /** The commands hash, then `;schedules=<digest>` when the runner reports code schedules (domain/codeSchedule.ts). */
  commands_hash: Label(200),
  max_concurrency: Type.Integer({ minimum: 1, maximum: 1000 }),
  /** Executions this runner is running now (after a reconnect, or a server restart). */
  running: Type.Array(Id, { maxItems: 1000 }),
  /**
   * What this runner can do beyond the base protocol. "read_only": it enforces `execute.read_only`
   * (read-only database mode); a runner without it is never sent a read-only execution.
   * "lists_received": `running` lists every execution it has received and not finished with,
   * being started included; one offered to it and not listed never reached it (the replica that
   * sent it died, or the connection broke first), so the server offers it again.
   */
  features: Type.Optional(Type.Array(Label(50), { maxItems: 50 })),
});
export type Hello = Static<typeof Hello>;

/**
 * The argparse definition, as bootstrap.py describes it, or null. Checked when the catalogue
 * arrives (domain/argparseSchema.ts, without recursion: it may be nested arbitrarily deep),
 * not here; a command whose name holds a control character is refused there too.
 */
export const ArgparseSchema = Type.Unknown({ description: 'argparse definition, see bootstrap.py' });

export const CommandsMessage = Type.Object({
  type: Type.Literal('commands'),
  commands: Type.Array(
    Type.Object({
      name: Type.String({ minLength: 1, maxLength: 200 }),
      app_label: Type.String({ maxLength: 200 }),
      help_text: Type.String({ maxLength: 200_000 }),
      schema: ArgparseSchema,
      /** Refused by this runner's own policy: shown, not runnable. */
      refused: Type.Optional(Type.String({ maxLength: 2000 })),
      /**
       * Listed in DJANGOCOMMAND_READONLY_COMMANDS: runs in read-only database mode by default.
       * When any command has it, the runner's commands hash ends with `;readonly=<digest>`
       * (domain/readOnly.ts), before any `;schedules=` part.
       */
      read_only: Type.Optional(Type.Boolean()),
    }),
    { maxItems: 5000 },
  ),
  /**
   * DJANGOCOMMAND_SCHEDULES, with bootstrap.py's defaults filled in (the Python runner never sends
   * it). Present: the project's code schedules become exactly these (an empty list removes them
   * all); absent: they are left as they are. Each is checked like a schedule from the API; one
   * that fails is skipped with an audit event, never failing the catalogue.
   */
  schedules: Type.Optional(
    Type.Array(
      Type.Object(
        {
          name: Type.String({ minLength: 1, maxLength: 200, pattern: NO_CONTROL_CHARACTERS }),
          command: Type.String({ minLength: 1, maxLength: 200, pattern: NO_CONTROL_CHARACTERS }),
          args: Type.String({ maxLength: 65_536 }),
          cron: Type.String({ minLength: 1, maxLength: 200, pattern: NO_CONTROL_CHARACTERS }),
          timezone: Type.String({ minLength: 1, maxLength: 100, pattern: NO_CONTROL_CHARACTERS }),
        },
        { additionalProperties: false },
      ),
      { maxItems: 500 },
    ),
  ),
});
export type CommandsMessage = Static<typeof CommandsMessage>;

export const Started = Type.Object({
  type: Type.Literal('started'),
  execution_id: Id,
  pid: Type.Union([Type.Integer({ minimum: 0, maximum: 2_147_483_647 }), Type.Null()]),
  warm: Type.Boolean(),
  /** Unix ms at which the process started, by the runner's clock. */
  at: UnixMs,
});
export type Started = Static<typeof Started>;

export const Output = Type.Object({
  type: Type.Literal('output'),
  execution_id: Id,
  /** 1, 2, 3... per execution, across stdout and stderr, in the order the runner read them. */
  seq: Type.Integer({ minimum: 1, maximum: MAX_COUNT }),
  stream: Type.Union([Type.Literal('stdout'), Type.Literal('stderr')]),
  data: Type.String(),
  /** [character offset in data, unix ms] for each line that starts in this chunk. */
  line_times: Type.Array(Type.Tuple([Type.Integer({ minimum: 0, maximum: 2_147_483_647 }), UnixMs])),
});
export type Output = Static<typeof Output>;

/** An output frame's header: the `output` message without its `data`. */
export const OutputHeader = Type.Omit(Output, ['data']);
export type OutputHeader = Static<typeof OutputHeader>;

/** Binary frame: [u32 big-endian header length][header JSON][data as UTF-8]. */
export function encodeOutputFrame(msg: Output): Buffer {
  const { data, ...header } = msg;
  const head = Buffer.from(JSON.stringify(header), 'utf8');
  const body = Buffer.from(data, 'utf8');
  const frame = Buffer.allocUnsafe(4 + head.length + body.length);
  frame.writeUInt32BE(head.length, 0);
  head.copy(frame, 4);
  body.copy(frame, 4 + head.length);
  return frame;
}

/** The header (unchecked) and the text of an output frame; undefined when it is not one. */
/**
 * The header (parsed, not yet validated) and the data's bytes, a view into `frame`, never
 * decoded: the server stores them as they came. Bytes that are not UTF-8 (no runner of ours
 * sends them) come back with U+FFFD in their place, so what is stored is always text.
 */
export function decodeOutputFrame(frame: Buffer): { header: unknown; data: Buffer } | undefined {
  if (frame.length < 4) return undefined;
  const length = frame.readUInt32BE(0);
  if (4 + length > frame.length) return undefined;
  let header: unknown;
  try {
    header = JSON.parse(frame.toString('utf8', 4, 4 + length));
  } catch {
    return undefined;
  }
  const data = frame.subarray(4 + length);
  return { header, data: isUtf8(data) ? data : Buffer.from(data.toString('utf8'), 'utf8') };
}

export const FinishedStatus = Type.Union([
  Type.Literal('success'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
  Type.Literal('timed_out'),
  Type.Literal('rejected'),
]);
export type FinishedStatus = Static<typeof FinishedStatus>;

export const Finished = Type.Object({
  type: Type.Literal('finished'),
  execution_id: Id,
  exit_code: ExitCode,
  status: FinishedStatus,
  /** Why, when it is not obvious: the policy that refused it, the argument error. */
  reason: Type.Optional(Type.String({ maxLength: 4000 })),
  /** How many output chunks there are in all, so the server knows when it has every one. */
  last_seq: Type.Integer({ minimum: 0, maximum: MAX_COUNT }),
  at: UnixMs,
});
export type Finished = Static<typeof Finished>;

/** The runner is stopping: it finishes what it runs but takes no new work. */
export const Draining = Type.Object({ type: Type.Literal('draining') });
export type Draining = Static<typeof Draining>;

/** Shell messages (shell_*) are described in shellProtocol.ts. */
export const RunnerMessage = Type.Union([Hello, CommandsMessage, Started, Output, Finished, Draining, ShellStarted, ShellRefused, ShellEcho, ShellWritableRequest, ShellModeChanged, ShellExited]);
export type RunnerMessage = Static<typeof RunnerMessage>;

// ---- server → runner ---------------------------------------------------------------------------

export interface Welcome {
  type: 'welcome';
  runner_id: string;
  commands_in_sync: boolean;
  /** Of the executions the runner said it is running, those the server no longer wants (cancel them). */
  cancel: string[];
}

export interface Execute {
  type: 'execute';
  execution_id: string;
  command: string;
  argv: string[];
  timeout: number;
  metadata_only: boolean;
  /**
   * Read-only database mode: the runner runs the command with every database connection refusing
   * writes (bootstrap.py enable_read_only). A runner that cannot must refuse the execution, never
   * run it writable. Absent (older servers): false.
   */
  read_only?: boolean;
}

export interface Cancel {
  type: 'cancel';
  execution_id: string;
  force: boolean;
  reason: 'user' | 'timeout';
}

export interface Ack {
  type: 'ack';
  execution_id: string;
  seq: number;
}

export interface FinishedAck {
  type: 'finished_ack';
  execution_id: string;
}

export interface ProtocolError {
  type: 'error';
  code: string;
  message: string;
}

/** The message was taken, but part of it was not (e.g. a DJANGOCOMMAND_SCHEDULES entry skipped): the runner logs it. */
export interface ProtocolWarning {
  type: 'warning';
  code: string;
  message: string;
}

export type ServerMessage = Welcome | Execute | Cancel | Ack | FinishedAck | ProtocolError | ProtocolWarning | ShellServerMessage;

/** WebSocket close codes the server uses, so a runner can tell "retry" from "fix your settings". */
export const CLOSE = {
  /** Bad key, revoked key, stale clock: retrying will not help until settings change (backoff long). */
  unauthorized: 4401,
  /** The runner sent something that is not protocol v2. */
  protocolError: 4400,
  /** The server is shutting down: reconnect soon. */
  goingAway: 1001,
  /** Another connection with the same runner_id replaced this one. */
  replaced: 4409,
} as const;
