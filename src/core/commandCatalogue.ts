/** Replacing a project's command catalogue with what a runner reported, for either protocol. */
import { commandsHash } from '../domain/commandsHash.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import type { RunnerCaller } from './runnerV1.js';
import { audit } from './audit.js';

export interface ReportedCommand {
  name: string;
  app_label: string;
  help_text: string;
  schema?: unknown;
  /** Why the runner's own policy refuses it (v2 lists refused commands; v1 leaves them out). */
  refused?: string;
}

/** Stores the catalogue and returns its hash: the v1 runner's hash of the commands it allows. */
export async function replaceCatalogue(core: Core, caller: RunnerCaller, commands: readonly ReportedCommand[]): Promise<string> {
  const names = new Set<string>();
  for (const c of commands) {
    if (names.has(c.name)) throw new UserError('DC_VALIDATION', `Command "${c.name}" is listed twice.`, 400, { field: 'commands' });
    names.add(c.name);
  }
  const runnable = commands.filter((c) => !c.refused);
  const hash = commandsHash(runnable);
  const now = core.now();
  const before = (await core.store.getProject(caller.project.id))?.commandsHash;
  await core.store.replaceCommands(
    caller.project.id,
    commands.map((c) => ({
      projectId: caller.project.id,
      name: c.name,
      appLabel: c.app_label,
      helpText: c.help_text,
      schema: c.schema ?? null,
      refused: c.refused ?? null,
      maxConcurrency: null,
      syncedAt: now,
    })),
    hash,
  );
  if (before !== hash) {
    await audit(core, caller.actor, {
      action: 'runner.commands_sync',
      projectId: caller.project.id,
      details: { count: runnable.length, refused: commands.length - runnable.length, hash, commands: runnable.map((c) => c.name).sort() },
    });
  }
  return hash;
}
