/**
 * The error taxonomy. A UserError is safe to show: it carries a stable code (never reused),
 * an HTTP status and a message that names the problem and the fix. Anything else is a bug:
 * logged with its cause, shown to the user only as "internal error".
 */
export const ERROR_CODES = {
  DC_BAD_REQUEST: 'the request is malformed',
  DC_VALIDATION: 'a field has a wrong value',
  DC_BAD_JSON: 'the body is not valid JSON',
  DC_BODY_TOO_LARGE: 'the body is larger than allowed',
  DC_BAD_ARGS: 'the arguments cannot be split as shell words',
  DC_BAD_ID: 'an id is not a UUID',
  DC_UNAUTHENTICATED: 'no or unknown credential',
  DC_WRONG_CREDENTIAL: 'a runner key on the user API or a user token on the runner API',
  DC_FORBIDDEN: 'the credential may not do this',
  DC_STALE_REQUEST: 'the request timestamp is missing or too far from the server clock',
  DC_REPLAYED_REQUEST: 'the request nonce was already used',
  DC_NOT_FOUND: 'no such route',
  DC_UNKNOWN_PROJECT: 'no such project',
  DC_UNKNOWN_COMMAND: 'the project has no such command',
  DC_UNKNOWN_EXECUTION: 'no such execution',
  DC_UNKNOWN_KEY: 'no such API key',
  DC_UNKNOWN_USER: 'no such user',
  DC_UNKNOWN_CHANNEL: 'no such notification channel',
  DC_UNKNOWN_SCHEDULE: 'no such schedule',
  DC_SCHEDULE_FROM_CODE: 'the schedule is defined in DJANGOCOMMAND_SCHEDULES: a deploy changes it',
  DC_SCHEDULE_NAME_TAKEN: 'a schedule from code has this name in the project',
  DC_BAD_CRON: 'a cron expression that cannot be read, or never fires',
  DC_UNKNOWN_TIMEZONE: 'not an IANA time zone',
  DC_PROJECT_EXISTS: 'a project with that name exists',
  DC_USER_EXISTS: 'a user with that email exists',
  DC_COMMAND_NOT_ALLOWED: "the runner's own policy refuses the command",
  DC_CONCURRENCY_LIMIT: 'too many executions of that command are active',
  DC_INVALID_TRANSITION: 'the execution is not in a state that allows this',
  DC_RATE_LIMITED: 'too many attempts',
  DC_WAIT_TIMEOUT: 'the command did not end within the wait',
  DC_COMMAND_FAILED: 'the command ran and did not succeed',
  DC_RETRY: 'the request raced with another attempt of it: send it again',
  DC_CONFIG: 'a setting has a wrong value',
  DC_REQUEST_TIMEOUT: 'the request did not arrive in time',
  DC_HEADERS_TOO_LARGE: 'the request headers are too large',
  DC_SHELLS_OFF: 'shells are turned off for the project',
  DC_SHELL_REASON: 'a writable shell needs a reason',
  DC_NO_RUNNER: 'no runner of the project is connected to this server',
  DC_SHELL_REFUSED: 'the runner or the Django side refused the shell',
  DC_SHELL_ENDED: 'the shell has ended',
  DC_UNKNOWN_SHELL: 'no such shell session',
  DC_INTERNAL: 'a bug: the server logged it',
  DC_SERVER_RUNNING: 'a server is running on this data folder: stop it first',
  DC_NOT_A_BACKUP: 'the file is not a whole djangocommand SQLite database',
  DC_AUDIT_CHAIN_BROKEN: 'the audit log hash chain is not whole: an event was changed, removed or inserted',
  DC_ARCHIVE_EXISTS: 'the audit archive file exists already',
  DC_KEY_IN_USE: 'a runner is still connected with that runner key',
  DC_READ_ONLY_UNSUPPORTED: 'a read-only run needs a v2 runner, and the online runners all speak v1',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class UserError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly status = 400,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/** Wraps anything thrown into an Error that keeps the original as its cause. */
export function coerceError(err: unknown, context: string): Error {
  if (err instanceof Error) return err;
  return new Error(`${context}: ${String(err)}`, { cause: err });
}
