/**
 * Read-only database mode when an execution is made: its effective mode (asked for, or a default
 * of its command; domain/readOnly.ts), and the refusal when no runner that could enforce it is
 * there. Only v2 runners (the TypeScript runner) enforce read-only mode: the Python runner
 * (protocol v1) would run the command writable, so it is never given a read-only execution.
 */
import type { Command, Project } from '../domain/model.js';
import { runnerOnline } from '../domain/model.js';
import { effectiveReadOnly, type ReadOnlySource } from '../domain/readOnly.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';

export interface ReadOnlyDecision {
  readOnly: boolean;
  sources: ReadOnlySource[];
}

/**
 * The mode of a run of `command`. Throws DC_READ_ONLY_UNSUPPORTED when it is read-only and the
 * project's online runners all speak v1 (nothing would enforce it). With no runner online it is
 * queued: only a v2 runner takes it (runnerV1.pending leaves read-only executions alone).
 */
export async function decideReadOnly(core: Core, project: Project, command: Command, requested: boolean): Promise<ReadOnlyDecision> {
  const decision = effectiveReadOnly(requested, command);
  if (!decision.readOnly) return decision;
  const online = (await core.store.listRunners(project.id)).filter((r) => runnerOnline(r, core.now(), core.settings.runnerOfflineAfterMs));
  if (online.length > 0 && !online.some((r) => r.protocol === 'v2')) {
    throw new UserError(
      'DC_READ_ONLY_UNSUPPORTED',
      `"${command.name}" would run in read-only database mode (${decision.sources.join(', ')}), but the runners of "${project.name}" online now all speak protocol v1 ` +
        `(the Python runner), which cannot enforce it; nothing was started. Run the TypeScript runner (djangocommand runner) for this project.`,
      { read_only_sources: decision.sources },
    );
  }
  return decision;
}
