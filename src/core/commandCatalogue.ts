/** Replacing a project's command catalogue with what a runner reported, for either protocol. */
import { commandsHash } from '../domain/commandsHash.js';
import { checkArgparseSchema } from '../domain/argparseSchema.js';
import { readOnlyHashSuffix } from '../domain/readOnly.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import type { RunnerCaller } from './runnerCaller.js';
import { audit } from './audit.js';

export interface ReportedCommand {
  name: string;
  app_label: string;
  help_text: string;
  schema?: unknown;
  /** Why the runner's own policy refuses it (v2 lists refused commands; v1 leaves them out). */
  refused?: string;
  /** Listed in DJANGOCOMMAND_READONLY_COMMANDS (v2 runners only). */
  read_only?: boolean;
}

/** Stores the catalogue and returns its hash: the v1 runner's hash of the commands it allows. */
export async function replaceCatalogue(core: Core, caller: RunnerCaller, commands: readonly ReportedCommand[]): Promise<string> {
  const names = new Set<string>();
  commands.forEach((c, i) => {
    checkReported(c, i);
    if (names.has(c.name)) throw new UserError('DC_VALIDATION', `Command "${c.name}" is listed twice.`, { field: 'commands' });
    names.add(c.name);
  });
  const runnable = commands.filter((c) => !c.refused);
  // The runner appends the same suffix when DJANGOCOMMAND_READONLY_COMMANDS names commands.
  const hash = commandsHash(runnable) + readOnlyHashSuffix(commands.filter((c) => c.read_only).map((c) => c.name));
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
      readOnlyDefault: false,
      djangoReadOnly: c.read_only === true,
    })),
    hash,
  );
  if (before !== hash) {
    await audit(core, caller.actor, {
      action: 'runner.commands_sync',
      projectId: caller.project.id,
      details: { count: runnable.length, refused: commands.length - runnable.length, hash, commands: runnable.map((c) => c.name).sort(), read_only: commands.filter((c) => c.read_only).map((c) => c.name).sort() },
    });
  }
  return hash;
}

/** C0 controls and DEL: never in a name (they forge log lines and break terminals), and NUL is never storable. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Refuses, before anything is stored, what would break a reader later: a control character in a
 * name (non-Latin names such as 名前 are fine: a Django command file may be called 名前.py), a NUL
 * in a text, an argparse schema validateArgv or the dashboard cannot read.
 */
function checkReported(c: ReportedCommand, i: number): void {
  const refuse = (field: string, message: string) => {
    throw new UserError('DC_VALIDATION', `commands[${i}].${field} ${message}`, { field: `commands[${i}].${field}`, command: c.name });
  };
  for (const field of ['name', 'app_label'] as const) {
    const bad = CONTROL.exec(c[field]);
    if (bad) refuse(field, `of command ${JSON.stringify(c.name)} contains the control character U+${bad[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}; names may not contain control characters.`);
  }
  if (c.help_text.includes('\0')) refuse('help_text', `of command ${JSON.stringify(c.name)} contains a NUL character.`);
  if (c.refused?.includes('\0')) refuse('refused', `of command ${JSON.stringify(c.name)} contains a NUL character.`);
  const problem = checkArgparseSchema(c.schema ?? null);
  if (problem) {
    throw new UserError('DC_VALIDATION', `The argparse schema of command ${JSON.stringify(c.name)} is not what bootstrap.py describes: ${problem.path} ${problem.message}.`, {
      field: `commands[${i}].${problem.path}`,
      command: c.name,
    });
  }
}
