/**
 * Which module registers which top-level command. main.ts loads only the group a command line
 * names: `run` and the other client commands load the REST client, not the server (Fastify, the
 * database drivers) nor the runner, and `--version` loads none. Importing everything took
 * ~400 ms before any command began; `node` itself starts in ~60 ms.
 * test/unit/cliCommandGroups.test.ts checks these lists against what each module registers.
 */
import type { Command } from 'commander';

export interface CommandGroup {
  commands: readonly string[];
  /**
   * Its commands are done when their action returns, so the process exits then, once its
   * output is flushed. Waiting for node to find nothing left to do costs 30–100 ms more: it
   * first waits for V8's background work (garbage collection, compiling fetch's WebAssembly
   * HTTP parser). Not for the server and the runner, which keep running after their action.
   */
  exitWhenDone: boolean;
  /** Imports the module; resolves with its register function. */
  load(): Promise<(program: Command) => void>;
}

export const COMMAND_GROUPS: readonly CommandGroup[] = [
  {
    commands: ['server', 'admin'],
    exitWhenDone: false,
    load: async () => {
      const [server, backup] = await Promise.all([import('./serverCommands.js'), import('./backupCommands.js')]);
      // backup and restore are `admin` subcommands, kept in their own module.
      return (program) => {
        server.registerServerCommands(program);
        backup.registerBackupCommands(program);
      };
    },
  },
  {
    commands: ['run', 'logs', 'cancel', 'executions', 'commands', 'command', 'projects', 'runners', 'audit'],
    exitWhenDone: true,
    load: async () => (await import('./clientCommands.js')).registerClientCommands,
  },
  {
    commands: ['start', 'stop', 'status', 'restart'],
    exitWhenDone: false,
    load: async () => (await import('./runnerCommands.js')).registerRunnerCommands,
  },
  {
    commands: ['schedule'],
    exitWhenDone: true,
    load: async () => (await import('./scheduleCommands.js')).registerScheduleCommands,
  },
  {
    commands: ['channel'],
    exitWhenDone: true,
    load: async () => (await import('./notificationCommands.js')).registerNotificationCommands,
  },
  {
    commands: ['shell', 'shells'],
    exitWhenDone: true,
    load: async () => (await import('./shellCommand.js')).registerShellCommands,
  },
  {
    commands: ['approve', 'deny', 'approvals', 'command-settings'],
    exitWhenDone: true,
    load: async () => (await import('./approvalCommands.js')).registerApprovalCommands,
  },
  {
    commands: ['members', 'tokens', 'ci-tokens', 'users', 'sessions'],
    exitWhenDone: true,
    load: async () => (await import('./accessCommands.js')).registerAccessCommands,
  },
  {
    commands: ['retention'],
    exitWhenDone: true,
    load: async () => (await import('./retentionCommands.js')).registerRetentionCommands,
  },
];

/**
 * The groups `args` (the words after `djangocommand`) needs: the one holding its command; none
 * for the version; every group otherwise (no command, help, a typo: commander then lists every
 * command or suggests the closest).
 */
export function groupsFor(args: readonly string[]): readonly CommandGroup[] {
  const first = args[0];
  if (versionOnly(args)) return [];
  const group = COMMAND_GROUPS.find((g) => first !== undefined && g.commands.includes(first));
  return group ? [group] : COMMAND_GROUPS;
}

/** `djangocommand --version` (or `-V`) and nothing else. */
export function versionOnly(args: readonly string[]): boolean {
  return args.length === 1 && (args[0] === '--version' || args[0] === '-V');
}
