/**
 * The error taxonomy. A UserError is safe to show: it carries a stable code (never reused)
 * and a message that names the problem and the fix; the code gives its HTTP status, here and
 * only here. Anything else is a bug:
 * logged with its cause, shown to the user only as "internal error".
 */
export const ERROR_CODES = {
  DC_BAD_REQUEST: { status: 400, meaning: 'the request is malformed' },
  DC_UNSUPPORTED_MEDIA_TYPE: { status: 415, meaning: 'the body is not of a content type the route takes' },
  DC_VALIDATION: { status: 400, meaning: 'a field has a wrong value' },
  DC_BAD_JSON: { status: 400, meaning: 'the body is not valid JSON' },
  DC_BODY_TOO_LARGE: { status: 413, meaning: 'the body is larger than allowed' },
  DC_BAD_ARGS: { status: 400, meaning: 'the arguments cannot be split as shell words' },
  DC_BAD_ID: { status: 400, meaning: 'an id is not a UUID' },
  DC_UNAUTHENTICATED: { status: 401, meaning: 'no or unknown credential' },
  DC_WRONG_CREDENTIAL: { status: 403, meaning: 'a runner key on the user API or a user token on the runner API' },
  DC_FORBIDDEN: { status: 403, meaning: 'the credential may not do this' },
  DC_STALE_REQUEST: { status: 401, meaning: 'the request timestamp is missing or too far from the server clock' },
  DC_REPLAYED_REQUEST: { status: 401, meaning: 'the request nonce was already used' },
  DC_NOT_FOUND: { status: 404, meaning: 'no such route' },
  DC_UNKNOWN_PROJECT: { status: 404, meaning: 'no such project' },
  DC_UNKNOWN_COMMAND: { status: 404, meaning: 'the project has no such command' },
  DC_UNKNOWN_EXECUTION: { status: 404, meaning: 'no such execution' },
  DC_UNKNOWN_KEY: { status: 404, meaning: 'no such API key' },
  DC_UNKNOWN_USER: { status: 404, meaning: 'no such user' },
  DC_UNKNOWN_CHANNEL: { status: 404, meaning: 'no such notification channel' },
  DC_UNKNOWN_SCHEDULE: { status: 404, meaning: 'no such schedule' },
  DC_SCHEDULE_FROM_CODE: { status: 409, meaning: 'the schedule is defined in DJANGOCOMMAND_SCHEDULES: a deploy changes it' },
  DC_SCHEDULE_NAME_TAKEN: { status: 409, meaning: 'a schedule from code has this name in the project' },
  DC_BAD_CRON: { status: 400, meaning: 'a cron expression that cannot be read, or never fires' },
  DC_UNKNOWN_TIMEZONE: { status: 400, meaning: 'not an IANA time zone' },
  DC_PROJECT_EXISTS: { status: 409, meaning: 'a project with that name exists' },
  DC_USER_EXISTS: { status: 409, meaning: 'a user with that email exists' },
  DC_COMMAND_NOT_ALLOWED: { status: 403, meaning: "the runner's own policy refuses the command" },
  DC_CONCURRENCY_LIMIT: { status: 409, meaning: 'too many executions of that command are active' },
  DC_INVALID_TRANSITION: { status: 409, meaning: 'the execution is not in a state that allows this' },
  DC_RATE_LIMITED: { status: 429, meaning: 'too many attempts' },
  DC_WAIT_TIMEOUT: { status: 504, meaning: 'the command did not end within the wait' },
  DC_COMMAND_FAILED: { status: 500, meaning: 'the command ran and did not succeed' },
  DC_RETRY: { status: 503, meaning: 'the request raced with another attempt of it: send it again' },
  DC_CONFIG: { status: 500, meaning: 'a setting has a wrong value' },
  DC_REQUEST_TIMEOUT: { status: 408, meaning: 'the request did not arrive in time' },
  DC_HEADERS_TOO_LARGE: { status: 431, meaning: 'the request headers are too large' },
  DC_SHELLS_OFF: { status: 409, meaning: 'shells are turned off for the project' },
  DC_SHELL_REASON: { status: 400, meaning: 'a writable shell needs a reason' },
  DC_NO_RUNNER: { status: 409, meaning: 'no runner of the project is connected to this server' },
  DC_SHELL_REFUSED: { status: 409, meaning: 'the runner or the Django side refused the shell' },
  DC_SHELL_ENDED: { status: 409, meaning: 'the shell has ended' },
  DC_UNKNOWN_SHELL: { status: 404, meaning: 'no such shell session' },
  DC_UNREACHABLE: { status: 503, meaning: 'the CLI cannot reach the server' },
  DC_INTERNAL: { status: 500, meaning: 'a bug: the server logged it' },
  DC_SERVER_RUNNING: { status: 409, meaning: 'a server is running on this data folder: stop it first' },
  DC_NOT_A_BACKUP: { status: 400, meaning: 'the file is not a whole djangocommand SQLite database' },
  DC_AUDIT_CHAIN_BROKEN: { status: 409, meaning: 'the audit log hash chain is not whole: an event was changed, removed or inserted' },
  DC_ARCHIVE_EXISTS: { status: 409, meaning: 'the audit archive file exists already' },
  DC_KEY_IN_USE: { status: 409, meaning: 'a runner is still connected with that runner key' },
  DC_TOKEN_EXPIRED: { status: 401, meaning: 'the API token has passed its expiry' },
  DC_ACCOUNT_DISABLED: { status: 401, meaning: 'the account is disabled or removed' },
  DC_PASSWORD_CHANGE_REQUIRED: { status: 403, meaning: 'the password is a one-time password: set a new one first' },
  DC_LAST_OWNER: { status: 409, meaning: 'the server would have no owner left' },
  DC_NOT_A_MEMBER: { status: 404, meaning: 'the user is not a member of the project' },
  DC_UNKNOWN_TOKEN: { status: 404, meaning: 'no such API token' },
  DC_UNKNOWN_SESSION: { status: 404, meaning: 'no such session' },
  DC_READ_ONLY_UNSUPPORTED: { status: 409, meaning: 'a read-only run needs a v2 runner, and the online runners all speak v1' },
  DC_SELF_APPROVAL: { status: 403, meaning: 'the requester of a four-eyes approval (by any session, token or schedule of theirs) cannot decide it' },
  DC_NOT_AWAITING_APPROVAL: { status: 409, meaning: 'the execution does not wait for approval (any more)' },
  DC_APPROVAL_MISMATCH: { status: 409, meaning: 'what the execution would run is not what was asked for approval' },
  DC_LOCAL_PASSWORDS_OFF: { status: 403, meaning: 'email and password sign-in is turned off on this server: use single sign-on' },
  DC_OIDC_OFF: { status: 404, meaning: 'single sign-on is not configured on this server' },
  DC_OIDC_LOGIN_EXPIRED: { status: 400, meaning: 'the single sign-on attempt is unknown, was used already or took too long: start again' },
  DC_OIDC_STATE_MISMATCH: { status: 400, meaning: "the provider's answer does not belong to this browser's sign-on attempt" },
  DC_OIDC_DENIED: { status: 401, meaning: 'the identity provider refused the sign-in (or it was cancelled there)' },
  DC_OIDC_FAILED: { status: 502, meaning: "the identity provider could not be reached, or its answer failed verification" },
  DC_OIDC_NO_EMAIL: { status: 403, meaning: 'the identity provider gave no email address for the person' },
  DC_OIDC_EMAIL_UNVERIFIED: { status: 403, meaning: 'the identity provider says the email address is not verified' },
  DC_OIDC_EMAIL_TAKEN: { status: 409, meaning: 'a user with that email exists and the provider did not confirm the address, so it is not linked' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface UserErrorOptions {
  /** How the CLI exits on it (1 unless said: 2 for a wrong setting or usage, as tools do). Never an HTTP status. */
  exitCode?: number;
}

export class UserError extends Error {
  readonly exitCode: number;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    opts: UserErrorOptions = {},
  ) {
    super(message);
    this.name = 'UserError';
    this.exitCode = opts.exitCode ?? 1;
  }

  /** Its HTTP status: one per code, from the table above. */
  get status(): number {
    return errorStatus(this.code);
  }
}

/** The HTTP status of a code; 500 for one this version does not know (sent by a newer server). */
export function errorStatus(code: string): number {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode].status : 500;
}

export function isUserError(err: unknown): err is UserError {
  return err instanceof UserError;
}

/** Wraps anything thrown into an Error that keeps the original as its cause. */
export function coerceError(err: unknown, context: string): Error {
  if (err instanceof Error) return err;
  return new Error(`${context}: ${String(err)}`, { cause: err });
}
