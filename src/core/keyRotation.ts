/**
 * Rotating a project's runner key without downtime. Every key of a project that is not revoked
 * is valid, so the overlap is: create the new key, move the runners to it (they reconnect with
 * it on restart), and revoke the old one once no runner uses it. This module tells which runners
 * still use which key, and refuses a careful revoke while one is connected with it.
 */
import { runnerOnline, type Actor, type Project, type Runner, type RunnerKey } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { createRunnerKey, findRunnerKey } from './projects.js';

export interface KeyUse {
  key: RunnerKey;
  /** Runners seen with the key, online first. */
  runners: Array<{ runner: Runner; online: boolean }>;
}

/** The project's keys that are not revoked, each with the runners seen using it. */
export async function keyUses(core: Core, project: Project): Promise<KeyUse[]> {
  const runners = await core.store.listRunners(project.id);
  const now = core.now();
  return (await core.store.listRunnerKeys(project.id))
    .filter((k) => k.revokedAt === null)
    .map((key) => ({
      key,
      runners: runners
        .filter((r) => r.keyId === key.id)
        .map((runner) => ({ runner, online: runnerOnline(runner, now, core.settings.runnerOfflineAfterMs) }))
        .sort((a, b) => Number(b.online) - Number(a.online) || b.runner.lastSeenAt - a.runner.lastSeenAt),
    }));
}

/** A new key for the project; the keys it replaces stay valid until revoked. */
export async function rotateRunnerKey(core: Core, actor: Actor, project: Project, name: string): Promise<{ key: RunnerKey; secret: string; previous: KeyUse[] }> {
  const previous = await keyUses(core, project);
  const { key, secret } = await createRunnerKey(core, actor, project, name);
  return { key, secret, previous };
}

/** Throws DC_KEY_IN_USE, naming the runners, while a runner is online with the key `ref` names. */
export async function assertKeyUnused(core: Core, ref: string): Promise<void> {
  const key = await findRunnerKey(core, ref);
  if (!key || key.revokedAt !== null) return; // revoke-key reports an unknown key, and a revoked one is no change
  const project = await core.store.getProject(key.projectId);
  if (!project) return;
  const use = (await keyUses(core, project)).find((u) => u.key.id === key.id);
  const online = use?.runners.filter((r) => r.online) ?? [];
  if (online.length === 0) return;
  const names = online.map(({ runner }) => `${runner.hostname || runner.address} (${runner.protocol})`).join(', ');
  throw new UserError(
    'DC_KEY_IN_USE',
    `Runner key ${key.prefix}… is still in use by ${online.length} online runner(s): ${names}. Give them the new key (DJANGOCOMMAND_API_KEY) and restart them, then revoke again; or revoke without --if-unused to cut them off now.`,
    { runners: online.map(({ runner }) => runner.id) },
  );
}
