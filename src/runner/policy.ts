/**
 * The runner's own policy: which commands it runs, whatever the server asks. The defaults and
 * the settings are the Python runner's, so a project's existing configuration means the same.
 * Pure functions: no I/O.
 */
export const DEFAULT_ALLOWED_COMMANDS: readonly string[] = [
  'migrate', 'showmigrations', 'dbbackup', 'createcachetable', 'collectstatic', 'findstatic',
  'clearsessions', 'check', 'sendtestemail', 'diffsettings', 'dumpdata', 'inspectdb', 'test',
  'show_urls', 'validate_templates', 'clear_cache', 'fixtree', 'publish_scheduled', 'update_index',
];

export const DEFAULT_DISALLOWED_COMMANDS: readonly string[] = [
  'flush', 'sqlflush', 'reset_db', 'dbrestore', 'loaddata', 'shell', 'shell_plus', 'dbshell',
  'runserver', 'runserver_plus', 'testserver', 'createsuperuser', 'changepassword',
  'makemigrations', 'squashmigrations',
];

/** The runner's own management command is never run through itself. */
const ALWAYS_EXCLUDED = ['djangocommand'];

export interface Policy {
  useBlocklist: boolean;
  allowed: readonly string[];
  disallowed: readonly string[];
  metadataOnly: readonly string[];
}

export type Verdict = { allowed: true } | { allowed: false; reason: string; fix: string };

export function judge(policy: Policy, command: string): Verdict {
  if (ALWAYS_EXCLUDED.includes(command)) {
    return { allowed: false, reason: `'${command}' is the runner's own command`, fix: 'It cannot be run through the runner.' };
  }
  if (policy.useBlocklist) {
    if (policy.disallowed.includes(command)) {
      return {
        allowed: false,
        reason: `'${command}' is in DJANGOCOMMAND_DISALLOWED_COMMANDS`,
        fix: `To allow it, remove '${command}' from DJANGOCOMMAND_DISALLOWED_COMMANDS in the Django settings.`,
      };
    }
    return { allowed: true };
  }
  if (policy.allowed.includes(command)) return { allowed: true };
  return {
    allowed: false,
    reason: `'${command}' is not in DJANGOCOMMAND_ALLOWED_COMMANDS`,
    fix: `To allow it, add it in the Django settings: DJANGOCOMMAND_ALLOWED_COMMANDS = DEFAULT_ALLOWED_COMMANDS + ('${command}',)`,
  };
}

export function isMetadataOnly(policy: Policy, command: string): boolean {
  return policy.metadataOnly.includes(command);
}
