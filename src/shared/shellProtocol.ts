/**
 * Audited shells on the wire. Two legs, one session id (a UUID the server gives):
 *
 *   person (CLI, dashboard)  ──/api/v1/shells/:id/attach──▶  server  ──runner v2 socket──▶  runner
 *
 * Runner leg (inside protocol v2, see protocolV2.ts):
 *   server → runner  shell_open (size, read-only?)      runner → server  shell_started | shell_refused
 *                    shell_input (typed bytes, base64)                    shell_data frame (terminal output)
 *                    shell_resize                                         shell_echo (input shown or hidden)
 *                    shell_mode (the server's decision)                   shell_writable_request (writable("reason"))
 *                    shell_answer (a refused request)                     shell_mode_changed (what the shell enforces)
 *                    shell_flow (pause/resume reading output)             shell_exited
 *                    shell_close
 * Terminal output travels as a binary frame shaped like v2 output frames: [u32 header length]
 * [header JSON {"type":"shell_data","session_id"}][the bytes as they came from the pty].
 * Typed input is rare and small next to output: JSON with base64 keeps the runner's socket
 * JSON-only in that direction.
 *
 * Client leg (the attach WebSocket): binary frames are terminal bytes both ways, text frames
 * are JSON control messages (ClientMessage up, ClientEvent down).
 *
 * Read-only by default. Writable only by the server's decision: the runner and the shell only
 * ask; `shell_mode` with read_only false comes after the server checked the person, audited it
 * and told the team. Going back to read-only never needs asking.
 */
import { Type, type Static } from '@sinclair/typebox';
import { NO_CONTROL_CHARACTERS } from './protocolV1.js';

const Id = Type.String({ format: 'uuid' });
const Reason = Type.String({ maxLength: 2000 });
const Size = Type.Integer({ minimum: 1, maximum: 1000 });

export const SHELL_DATA = 'shell_data';
/** Largest typed-input piece per message (bytes, before base64). */
export const SHELL_INPUT_CHUNK = 64 * 1024;

// ---- runner → server ---------------------------------------------------------------------------

export const ShellStarted = Type.Object({ type: Type.Literal('shell_started'), session_id: Id, pid: Type.Integer({ minimum: 0, maximum: 2_147_483_647 }), read_only: Type.Boolean() }, { additionalProperties: false });
/** The runner or the Django side would not open it (DJANGOCOMMAND_ALLOW_SHELL = False, Django does not load). */
export const ShellRefused = Type.Object({ type: Type.Literal('shell_refused'), session_id: Id, reason: Reason }, { additionalProperties: false });
/** The terminal now shows (true) or hides (false: a password prompt) what is typed: hidden input is not recorded. */
export const ShellEcho = Type.Object({ type: Type.Literal('shell_echo'), session_id: Id, on: Type.Boolean() }, { additionalProperties: false });
export const ShellWritableRequest = Type.Object(
  { type: Type.Literal('shell_writable_request'), session_id: Id, request_id: Id, reason: Type.String({ maxLength: 2000, pattern: NO_CONTROL_CHARACTERS }) },
  { additionalProperties: false },
);
export const ShellModeChanged = Type.Object({ type: Type.Literal('shell_mode_changed'), session_id: Id, read_only: Type.Boolean() }, { additionalProperties: false });
export const ShellExited = Type.Object(
  { type: Type.Literal('shell_exited'), session_id: Id, exit_code: Type.Union([Type.Integer({ minimum: -255, maximum: 255 }), Type.Null()]), reason: Type.Optional(Reason) },
  { additionalProperties: false },
);

export const ShellRunnerMessage = Type.Union([ShellStarted, ShellRefused, ShellEcho, ShellWritableRequest, ShellModeChanged, ShellExited]);
export type ShellRunnerMessage = Static<typeof ShellRunnerMessage>;
export const SHELL_RUNNER_SCHEMAS = [ShellStarted, ShellRefused, ShellEcho, ShellWritableRequest, ShellModeChanged, ShellExited];

export const ShellDataHeader = Type.Object({ type: Type.Literal(SHELL_DATA), session_id: Id }, { additionalProperties: false });

/** Encoding and decoding of shell data frames (Node only): shellFrame.ts. */

// ---- server → runner ---------------------------------------------------------------------------

export interface ShellOpen {
  type: 'shell_open';
  session_id: string;
  cols: number;
  rows: number;
  read_only: boolean;
}
export interface ShellInput {
  type: 'shell_input';
  session_id: string;
  /** base64, at most SHELL_INPUT_CHUNK bytes. */
  data: string;
}
export interface ShellResize {
  type: 'shell_resize';
  session_id: string;
  cols: number;
  rows: number;
}
/** The server's decision; request_id answers a shell_writable_request. */
export interface ShellMode {
  type: 'shell_mode';
  session_id: string;
  read_only: boolean;
  request_id?: string;
}
export interface ShellAnswer {
  type: 'shell_answer';
  session_id: string;
  request_id: string;
  granted: false;
  message: string;
}
/** Stop (paused) or go on reading the shell's output: the person's connection or the recording is behind. */
export interface ShellFlow {
  type: 'shell_flow';
  session_id: string;
  paused: boolean;
}
export interface ShellClose {
  type: 'shell_close';
  session_id: string;
  reason: string;
}
export type ShellServerMessage = ShellOpen | ShellInput | ShellResize | ShellMode | ShellAnswer | ShellFlow | ShellClose;

// ---- client leg --------------------------------------------------------------------------------

export const ShellClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('resize'), cols: Size, rows: Size }, { additionalProperties: false }),
  /** Make the shell writable; the reason is required (checked by the server, refused when empty). */
  Type.Object({ type: Type.Literal('writable'), reason: Type.String({ maxLength: 2000 }) }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal('readonly') }, { additionalProperties: false }),
  /** End the session (a dropped socket does not: it may reattach). */
  Type.Object({ type: Type.Literal('close') }, { additionalProperties: false }),
]);
export type ShellClientMessage = Static<typeof ShellClientMessage>;

/** What the server tells an attached client, besides terminal bytes. */
export type ShellClientEvent =
  | { type: 'status'; state: ShellState; read_only: boolean; became_writable: boolean }
  | { type: 'notice'; message: string; code?: string }
  | { type: 'ended'; reason: string; exit_code: number | null };

export type ShellState = 'starting' | 'open' | 'ended' | 'refused';

export function shellAttachPath(sessionId: string): string {
  return `/api/v1/shells/${sessionId}/attach`;
}
export const SHELL_ATTACH_PATH = /^\/api\/v1\/shells\/([0-9a-f-]{36})\/attach$/;
