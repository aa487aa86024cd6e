/** Projects and their runner API keys. */
import { randomUUID } from 'node:crypto';
import type { Actor, Project, RunnerKey } from '../domain/model.js';
import { UserError } from '../shared/errors.js';
import type { Core } from './context.js';
import { audit } from './audit.js';
import { insertUnlessTaken } from './uniqueness.js';
import { hashSecret, newRunnerKey, RUNNER_KEY_PREFIX } from './secrets.js';
import { topics } from './notifier.js';

const PROJECT_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function validateProjectName(name: string): string {
  if (!PROJECT_NAME.test(name)) {
    throw new UserError(
      'DC_VALIDATION',
      `Project name "${name}" is not allowed: use 1 to 63 lowercase letters, digits, "-" or "_", starting with a letter or digit.`,
      { field: 'name' },
    );
  }
  return name;
}

export async function createProject(core: Core, actor: Actor, name: string): Promise<{ project: Project; key: RunnerKey; secret: string }> {
  validateProjectName(name);
  if (await core.store.findProjectByName(name)) throw new UserError('DC_PROJECT_EXISTS', `Project "${name}" exists already.`);
  const project: Project = { id: randomUUID(), name, commandsHash: '', createdAt: core.now() };
  await insertUnlessTaken(
    () => core.store.createProject(project),
    async () => (await core.store.findProjectByName(name)) !== undefined,
    new UserError('DC_PROJECT_EXISTS', `Project "${name}" exists already.`),
  );
  await audit(core, actor, { action: 'project.create', projectId: project.id, details: { name } });
  const { key, secret } = await createRunnerKey(core, actor, project, 'default');
  return { project, key, secret };
}

export async function createRunnerKey(core: Core, actor: Actor, project: Project, name: string): Promise<{ key: RunnerKey; secret: string }> {
  const s = newRunnerKey();
  const key: RunnerKey = { id: randomUUID(), projectId: project.id, name, prefix: s.prefix, keyHash: s.hash, createdAt: core.now(), revokedAt: null };
  await core.store.createRunnerKey(key);
  await audit(core, actor, { action: 'runner_key.create', projectId: project.id, details: { prefix: s.prefix, name } });
  return { key, secret: s.secret };
}

/** Revokes by key id, by prefix (as lists show it) or by the full key. */
export async function revokeRunnerKey(core: Core, actor: Actor, ref: string): Promise<RunnerKey> {
  const key = await findRunnerKey(core, ref);
  if (!key) throw new UserError('DC_UNKNOWN_KEY', `No runner key matches "${shortRef(ref)}". List keys with \`djangocommand admin list-projects\`.`);
  if (key.revokedAt === null) {
    await core.store.revokeRunnerKey(key.id, core.now());
    await audit(core, actor, { action: 'runner_key.revoke', projectId: key.projectId, details: { prefix: key.prefix } });
  }
  // Also when it was revoked already: a connection another replica missed the news of ends too.
  core.notifier.publish(topics.credential('runner_key', key.id));
  return { ...key, revokedAt: key.revokedAt ?? core.now() };
}

export async function findRunnerKey(core: Core, ref: string): Promise<RunnerKey | undefined> {
  if (ref.startsWith(RUNNER_KEY_PREFIX) && ref.length > 20) return core.store.findRunnerKeyByHash(hashSecret(ref));
  if (ref.startsWith(RUNNER_KEY_PREFIX)) return core.store.findRunnerKeyByPrefix(ref);
  const all = await core.store.listProjects();
  for (const p of all) {
    const match = (await core.store.listRunnerKeys(p.id)).find((k) => k.id === ref);
    if (match) return match;
  }
  return undefined;
}

function shortRef(ref: string): string {
  // Never echo a full secret back.
  return ref.length > 20 ? ref.slice(0, 11) + '…' : ref;
}

/** Finds a project by name or id; with no name, the only project there is. */
export async function resolveProject(core: Core, ref: string | undefined): Promise<Project> {
  if (ref) {
    const p = (await core.store.findProjectByName(ref)) ?? (await core.store.getProject(ref));
    if (!p) throw new UserError('DC_UNKNOWN_PROJECT', `No project named "${ref}".`);
    return p;
  }
  const all = await core.store.listProjects();
  if (all.length === 1) return all[0];
  if (all.length === 0) throw new UserError('DC_UNKNOWN_PROJECT', 'There is no project yet: create one with `djangocommand admin create-project NAME`.');
  throw new UserError('DC_VALIDATION', `Name a project: there are ${all.length} (${all.map((p) => p.name).join(', ')}).`, { field: 'project' });
}
