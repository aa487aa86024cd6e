/**
 * The Store, written once over Kysely for both SQLite and PostgreSQL. Dialect differences come
 * from the Capabilities flags only.
 */
import { randomUUID } from 'node:crypto';
import { Kysely, Migrator, sql, type RawBuilder, type Insertable, type Selectable, type Migration, type MigrationProvider, type Transaction, type QueryCreator, type SelectQueryBuilder } from 'kysely';
import type { Database, ExecutionsTable, OutputChunksTable, AuditEventsTable, RunnersTable, CommandsTable } from './schema.js';
import type { Capabilities } from './dialects.js';
import { migrations } from './migrations.js';
import { ScheduleSql } from './scheduleSql.js';
import { NotificationSql } from './notificationSql.js';
import { ShellSql } from './shellSql.js';
import { AccessSql } from './accessSql.js';
import { CommandSettingsSql } from './commandSettingsSql.js';
import { ApprovalSql } from './approvalSql.js';
import { OidcSql } from './oidcSql.js';
import { RetentionSql } from './retentionSql.js';
import { OperationsSql } from './operationsSql.js';
import { AuditSql } from './auditSql.js';
import type { RowCache } from './rowCache.js';
import type { AuditFilter, CreateExecutionResult, ExecutionFilter, ExecutionPatch, NonceRecord, Page, RunnerSighting, Store, TokenHolder } from './store.js';
import type {
  ApiToken,
  AuditEvent,
  Command,
  Execution,
  NewAuditEvent,
  NewOutputChunk,
  OutputChunk,
  Project,
  Runner,
  RunnerKey,
  Session,
  User,
  Membership,
} from '../domain/model.js';
import type { ProjectRole } from '../domain/roles.js';
import { ACTIVE_STATUSES, type ExecutionStatus } from '../domain/execution.js';
import { UserError } from '../shared/errors.js';
import { CompiledQueries } from './compiledQueries.js';
import { GroupCommit } from './groupCommit.js';
import type { QueryTimer } from './queryTiming.js';

/** Executions of several callers created in one transaction, at most (one caller's are never split). */
const CREATIONS_A_TRANSACTION = 500;

export class KyselyStore implements Store {
  readonly dialect: 'sqlite' | 'postgres';
  readonly schedules: ScheduleSql;
  readonly notifications: NotificationSql;
  readonly shells: ShellSql;
  readonly access: AccessSql;
  readonly commandSettings: CommandSettingsSql;
  readonly approvals: ApprovalSql;
  readonly oidc: OidcSql;
  readonly retention: RetentionSql;
  readonly operations: OperationsSql;
  readonly auditChain: AuditSql;

  /** The busiest queries, compiled once (see compiledQueries.ts). */
  private readonly compiled: CompiledQueries;
  /** Through the row cache where there is one; straight to the database where not. */
  private readonly cached: <V extends object>(key: string, load: () => Promise<V | undefined>) => Promise<V | undefined>;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly caps: Capabilities,
    onQuery?: QueryTimer,
    /** Rows every runner request reads (keys, projects), kept in-process where the engine says when they change (rowCache.ts). */
    rows?: RowCache,
  ) {
    this.dialect = caps.name;
    this.cached = rows ? (key, load) => rows.get(key, load) : (_key, load) => load();
    this.compiled = new CompiledQueries(db, caps.textHoldsNul, onQuery);
    this.schedules = new ScheduleSql(db, caps);
    this.notifications = new NotificationSql(db, caps);
    this.shells = new ShellSql(db);
    this.access = new AccessSql(db, toToken);
    this.commandSettings = new CommandSettingsSql(db, toCommand);
    this.approvals = new ApprovalSql(db);
    this.oidc = new OidcSql(db);
    this.operations = new OperationsSql(db);
    this.auditChain = new AuditSql(db, caps, this.compiled);
    this.retention = new RetentionSql(db, caps, this.auditChain);
  }

  async migrate(): Promise<void> {
    const all = migrations(this.caps);
    const provider: MigrationProvider = { getMigrations: async (): Promise<Record<string, Migration>> => all };
    const migrator = new Migrator({ db: this.db, provider, migrationTableName: 'dc_migrations', migrationLockTableName: 'dc_migrations_lock' });
    const { error } = await migrator.migrateToLatest();
    if (error) throw new Error('database migration failed', { cause: error });
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }

  // ---- users and tokens -------------------------------------------------------------------

  async createUser(u: User): Promise<void> {
    await this.db
      .insertInto('users')
      .values({
        id: u.id,
        email: u.email,
        password_hash: u.passwordHash,
        is_admin: u.isAdmin ? 1 : 0,
        created_at: u.createdAt,
        disabled_at: u.disabledAt,
        removed_at: u.removedAt,
        must_change_password: u.mustChangePassword ? 1 : 0,
      })
      .execute();
  }

  async getUser(id: string): Promise<User | undefined> {
    const [row] = (await this.compiled.run('getUser', [id], (id) => this.db.selectFrom('users').selectAll().where('id', '=', id))).rows;
    return row && toUser(row);
  }

  async findUserByEmail(email: string): Promise<User | undefined> {
    const row = await this.db.selectFrom('users').selectAll().where('email', '=', email.toLowerCase()).executeTakeFirst();
    return row && toUser(row);
  }

  async listUsers(): Promise<User[]> {
    return (await this.db.selectFrom('users').selectAll().where('removed_at', 'is', null).orderBy('created_at').execute()).map(toUser);
  }

  async countUsers(): Promise<number> {
    const row = await this.db.selectFrom('users').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async createToken(t: ApiToken): Promise<void> {
    await this.db
      .insertInto('api_tokens')
      .values({
        id: t.id,
        user_id: t.userId,
        name: t.name,
        prefix: t.prefix,
        token_hash: t.tokenHash,
        created_at: t.createdAt,
        last_used_at: t.lastUsedAt,
        revoked_at: t.revokedAt,
        project_ids: t.projectIds === null ? null : JSON.stringify(t.projectIds),
        read_only: t.readOnly ? 1 : 0,
        expires_at: t.expiresAt,
      })
      .execute();
  }

  async findTokenByHash(hash: string): Promise<TokenHolder | undefined> {
    const build = (hash: never) =>
      this.db
        .selectFrom('api_tokens as t')
        .leftJoin('users as u', 'u.id', 't.user_id')
        .leftJoin('project_members as m', 'm.user_id', 't.user_id')
        .selectAll('t')
        .select(['u.id as u_id', 'u.email as u_email', 'u.password_hash as u_password_hash', 'u.is_admin as u_is_admin', 'u.created_at as u_created_at'])
        .select(['u.disabled_at as u_disabled_at', 'u.removed_at as u_removed_at', 'u.must_change_password as u_must_change_password'])
        .select(['m.project_id as m_project_id', 'm.role as m_role', 'm.created_at as m_created_at', 'm.updated_at as m_updated_at'])
        .where('t.token_hash', '=', hash);
    // One row per membership of the token's person (one with no membership when they have none).
    const rows = (await this.compiled.run('findTokenByHash', [hash], build)).rows;
    if (rows.length === 0) return undefined;
    const r = rows[0];
    const user =
      r.u_id === null
        ? undefined
        : toUser({
            id: r.u_id,
            email: r.u_email!,
            password_hash: r.u_password_hash!,
            is_admin: r.u_is_admin!,
            created_at: r.u_created_at!,
            disabled_at: r.u_disabled_at,
            removed_at: r.u_removed_at,
            must_change_password: r.u_must_change_password!,
          });
    const memberships = rows.flatMap((m): Membership[] =>
      m.m_project_id === null ? [] : [{ projectId: m.m_project_id, userId: r.user_id, role: m.m_role as ProjectRole, createdAt: Number(m.m_created_at), updatedAt: Number(m.m_updated_at) }],
    );
    return { token: toToken(r), user, memberships };
  }

  async touchToken(id: string, at: number): Promise<void> {
    await this.db.updateTable('api_tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  async listTokens(userId: string): Promise<ApiToken[]> {
    const rows = await this.db.selectFrom('api_tokens').selectAll().where('user_id', '=', userId).orderBy('created_at', 'desc').execute();
    return rows.map(toToken);
  }

  async getToken(id: string): Promise<ApiToken | undefined> {
    const r = await this.db.selectFrom('api_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toToken(r);
  }

  async revokeToken(id: string, userId: string, at: number): Promise<boolean> {
    const res = await this.db.updateTable('api_tokens').set({ revoked_at: at }).where('id', '=', id).where('user_id', '=', userId).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async createSession(x: Session): Promise<void> {
    await this.db
      .insertInto('sessions')
      .values({ id_hash: x.idHash, user_id: x.userId, csrf_token: x.csrfToken, address: x.address, created_at: x.createdAt, expires_at: x.expiresAt })
      .execute();
  }

  async findSession(idHash: string): Promise<Session | undefined> {
    const r = await this.db.selectFrom('sessions').selectAll().where('id_hash', '=', idHash).executeTakeFirst();
    return r && { idHash: r.id_hash, userId: r.user_id, csrfToken: r.csrf_token, address: r.address, createdAt: r.created_at, expiresAt: r.expires_at };
  }

  async deleteSession(idHash: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id_hash', '=', idHash).execute();
  }

  async pruneSessions(now: number): Promise<number> {
    const res = await this.db.deleteFrom('sessions').where('expires_at', '<', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  // ---- projects and keys ------------------------------------------------------------------

  async createProject(p: Project): Promise<void> {
    await this.db.insertInto('projects').values({ id: p.id, name: p.name, commands_hash: p.commandsHash, created_at: p.createdAt }).execute();
  }

  async getProject(id: string): Promise<Project | undefined> {
    return this.cached(`project:${id}`, async () => {
      const [r] = (await this.compiled.run('getProject', [id], (id) => this.db.selectFrom('projects').selectAll().where('id', '=', id))).rows;
      return r && toProject(r);
    });
  }

  async findProjectByName(name: string): Promise<Project | undefined> {
    return this.cached(`project-named:${name}`, async () => {
      const [r] = (await this.compiled.run('findProjectByName', [name], (name) => this.db.selectFrom('projects').selectAll().where('name', '=', name))).rows;
      return r && toProject(r);
    });
  }

  async listProjects(): Promise<Project[]> {
    return (await this.db.selectFrom('projects').selectAll().orderBy('name').execute()).map(toProject);
  }

  async createRunnerKey(k: RunnerKey): Promise<void> {
    await this.db
      .insertInto('runner_keys')
      .values({ id: k.id, project_id: k.projectId, name: k.name, prefix: k.prefix, key_hash: k.keyHash, created_at: k.createdAt, revoked_at: k.revokedAt })
      .execute();
  }

  async findRunnerKeyByHash(hash: string): Promise<RunnerKey | undefined> {
    const r = await this.db.selectFrom('runner_keys').selectAll().where('key_hash', '=', hash).executeTakeFirst();
    return r && toRunnerKey(r);
  }

  async findRunnerKeyWithProject(hash: string): Promise<{ key: RunnerKey; project: Project | undefined } | undefined> {
    return this.cached(`key-hash:${hash}`, () => this.readRunnerKeyWithProject(hash));
  }

  private async readRunnerKeyWithProject(hash: string): Promise<{ key: RunnerKey; project: Project | undefined } | undefined> {
    const [r] = (
      await this.compiled.run('findRunnerKeyWithProject', [hash], (hash) =>
        this.db
          .selectFrom('runner_keys as k')
          .leftJoin('projects as p', 'p.id', 'k.project_id')
          .selectAll('k')
          .select(['p.id as p_id', 'p.name as p_name', 'p.commands_hash as p_commands_hash', 'p.created_at as p_created_at'])
          .where('k.key_hash', '=', hash),
      )
    ).rows;
    if (!r) return undefined;
    const project = r.p_id === null ? undefined : { id: r.p_id, name: r.p_name!, commandsHash: r.p_commands_hash!, createdAt: r.p_created_at! };
    return { key: toRunnerKey(r), project };
  }

  async findRunnerKeyByPrefix(prefix: string): Promise<RunnerKey | undefined> {
    const r = await this.db.selectFrom('runner_keys').selectAll().where('prefix', '=', prefix).executeTakeFirst();
    return r && toRunnerKey(r);
  }

  async listRunnerKeys(projectId: string): Promise<RunnerKey[]> {
    return (await this.db.selectFrom('runner_keys').selectAll().where('project_id', '=', projectId).orderBy('created_at').execute()).map(toRunnerKey);
  }

  async revokeRunnerKey(id: string, at: number): Promise<boolean> {
    const res = await this.db.updateTable('runner_keys').set({ revoked_at: at }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async runnerKeysRevokedSince(since: number): Promise<string[]> {
    return (await this.db.selectFrom('runner_keys').select('id').where('revoked_at', '>=', since).execute()).map((r) => r.id);
  }

  async markRunnersSeen(runnerIds: readonly string[], at: number): Promise<void> {
    for (let i = 0; i < runnerIds.length; i += 500) {
      await this.db
        .updateTable('runners')
        .set({ last_seen_at: at })
        .where('id', 'in', runnerIds.slice(i, i + 500))
        .where('last_seen_at', '<', at)
        // A runner that said it stopped stays stopped: a late flush of its last pongs must not bring it back.
        .where((eb) => eb.or([eb('stopped_at', 'is', null), eb('stopped_at', '<', eb.ref('last_seen_at'))]))
        .execute();
    }
  }

  async projectsWithStatus(statuses: readonly ExecutionStatus[]): Promise<string[]> {
    const rows = await this.db.selectFrom('executions').select('project_id').distinct().where('status', 'in', [...statuses]).execute();
    return rows.map((r) => r.project_id);
  }

  async revokedRunnerKeys(ids: readonly string[]): Promise<string[]> {
    if (ids.length === 0) return [];
    if (ids.length === 1) {
      // Before every message of a v2 runner: the busiest shape.
      const found = await this.cached(`key-revoked:${ids[0]}`, async () => {
        const { rows } = await this.compiled.run('runnerKeyRevoked', ids, (id) => this.db.selectFrom('runner_keys').select('revoked_at').where('id', '=', id));
        return rows[0] && { revoked: rows[0].revoked_at !== null };
      });
      return found === undefined || found.revoked ? [...ids] : [];
    }
    const found = new Map<string, boolean>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.db.selectFrom('runner_keys').select(['id', 'revoked_at']).where('id', 'in', ids.slice(i, i + 500)).execute();
      for (const r of rows) found.set(r.id, r.revoked_at !== null);
    }
    return ids.filter((id) => found.get(id) !== false);
  }

  async recordNonce(keyId: string, nonce: string, at: number, fingerprint: string, answer?: { status: number; body: string }): Promise<NonceRecord> {
    const insert = (values: Insertable<Database['request_nonces']>) =>
      this.db
        .insertInto('request_nonces')
        .values(values)
        .onConflict((oc) => oc.columns(['key_id', 'nonce']).doNothing());
    const res = answer
      ? await this.compiled.run('recordAnsweredNonce', [keyId, nonce, at, fingerprint, answer.status, answer.body], (key_id, nonce, seen_at, fingerprint, response_status, response_body) =>
          insert({ key_id, nonce, seen_at, fingerprint, response_status, response_body }),
        )
      : await this.compiled.run('recordNonce', [keyId, nonce, at, fingerprint], (key_id, nonce, seen_at, fingerprint) =>
          insert({ key_id, nonce, seen_at, fingerprint, response_status: null, response_body: null }),
        );
    if (Number(res.numAffectedRows ?? 0) > 0) return { fresh: true };
    const row = await this.db.selectFrom('request_nonces').selectAll().where('key_id', '=', keyId).where('nonce', '=', nonce).executeTakeFirst();
    return {
      fresh: false,
      fingerprint: row?.fingerprint ?? '',
      seenAt: row?.seen_at ?? at,
      response: row && row.response_status !== null ? { status: row.response_status, body: row.response_body ?? '' } : null,
    };
  }

  async saveNonceResponse(keyId: string, nonce: string, status: number, body: string, fingerprint?: string): Promise<void> {
    if (fingerprint !== undefined) {
      await this.db.updateTable('request_nonces').set({ response_status: status, response_body: body, fingerprint }).where('key_id', '=', keyId).where('nonce', '=', nonce).execute();
      return;
    }
    await this.compiled.run('saveNonceResponse', [status, body, keyId, nonce], (status, body, keyId, nonce) =>
      this.db.updateTable('request_nonces').set({ response_status: status, response_body: body }).where('key_id', '=', keyId).where('nonce', '=', nonce),
    );
  }

  async forgetNonce(keyId: string, nonce: string): Promise<void> {
    await this.db.deleteFrom('request_nonces').where('key_id', '=', keyId).where('nonce', '=', nonce).execute();
  }

  async forgetUnansweredNonce(keyId: string, nonce: string, seenAt: number): Promise<boolean> {
    const res = await this.db
      .deleteFrom('request_nonces')
      .where('key_id', '=', keyId)
      .where('nonce', '=', nonce)
      .where('seen_at', '=', seenAt)
      .where('response_status', 'is', null)
      .executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async recordLoginAttempt(keyHash: string, now: number, windowMs: number): Promise<{ attempts: number; windowEndsAt: number }> {
    const row = await this.db
      .insertInto('login_attempts')
      .values({ key_hash: keyHash, attempts: 1, window_ends_at: now + windowMs })
      .onConflict((oc) =>
        oc.column('key_hash').doUpdateSet({
          attempts: sql<number>`CASE WHEN login_attempts.window_ends_at <= ${now} THEN 1 ELSE login_attempts.attempts + 1 END`,
          window_ends_at: sql<number>`CASE WHEN login_attempts.window_ends_at <= ${now} THEN ${now + windowMs} ELSE login_attempts.window_ends_at END`,
        }),
      )
      .returning(['attempts', 'window_ends_at'])
      .executeTakeFirstOrThrow();
    return { attempts: Number(row.attempts), windowEndsAt: Number(row.window_ends_at) };
  }

  async clearLoginAttempts(keyHash: string): Promise<void> {
    await this.db.deleteFrom('login_attempts').where('key_hash', '=', keyHash).execute();
  }

  async pruneLoginAttempts(now: number): Promise<number> {
    const res = await this.db.deleteFrom('login_attempts').where('window_ends_at', '<=', now).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  async pruneNonces(olderThan: number): Promise<number> {
    const res = await this.db.deleteFrom('request_nonces').where('seen_at', '<', olderThan).executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  // ---- runners and commands ---------------------------------------------------------------

  async sightRunner(s: RunnerSighting): Promise<Runner> {
    const v = s.versions;
    const values = [
      randomUUID(),
      s.projectId,
      s.keyId,
      s.address,
      s.protocol,
      s.instance ?? '',
      s.hostname ?? '',
      s.maxConcurrency ?? null,
      v?.runnerVersion ?? '',
      v?.pythonVersion ?? '',
      v?.djangoVersion ?? '',
      v?.commandsHash ?? '',
      s.at,
    ];
    // Inserted, or its sighting (and versions, when told) updated: the row either way, in one statement.
    const { rows } = await this.compiled.run(v ? 'sightRunnerWithVersions' : 'sightRunner', values, (id, projectId, keyId, address, protocol, instance, hostname, maxConcurrency, runnerVersion, pythonVersion, djangoVersion, commandsHash, at) => {
        const told = {
          hostname,
          max_concurrency: maxConcurrency,
          runner_version: runnerVersion,
          python_version: pythonVersion,
          django_version: djangoVersion,
          commands_hash: commandsHash,
        };
        return this.db
          .insertInto('runners')
          .values({ id, project_id: projectId, key_id: keyId, address, protocol, instance, ...told, first_seen_at: at, last_seen_at: at, stopped_at: null })
          .onConflict((oc) => oc.columns(['key_id', 'address', 'protocol', 'instance']).doUpdateSet(v ? { last_seen_at: at, ...told } : { last_seen_at: at }))
          .returningAll();
      },
    );
    return toRunner(rows[0]);
  }

  async getRunner(id: string): Promise<Runner | undefined> {
    const r = await this.db.selectFrom('runners').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toRunner(r);
  }

  async markRunnerStopped(id: string, at: number): Promise<void> {
    await this.db.updateTable('runners').set({ stopped_at: at }).where('id', '=', id).execute();
  }

  async listRunners(projectId: string): Promise<Runner[]> {
    return (await this.db.selectFrom('runners').selectAll().where('project_id', '=', projectId).orderBy('last_seen_at', 'desc').execute()).map(toRunner);
  }

  async replaceCommands(projectId: string, commands: Command[], hash: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      // Per-command settings (concurrency) survive a re-sync of the catalogue.
      const { rows: keptRows } = await this.compiled.run(
        'keptCommandSettings',
        [projectId],
        (projectId) => this.db.selectFrom('commands').select(['name', 'max_concurrency', 'read_only_default']).where('project_id', '=', projectId),
        trx,
      );
      const kept = new Map(keptRows.map((r) => [r.name, r.max_concurrency]));
      const keptReadOnly = new Map(keptRows.map((r) => [r.name, r.read_only_default]));
      await this.compiled.run('deleteCommands', [projectId], (projectId) => this.db.deleteFrom('commands').where('project_id', '=', projectId), trx);
      const rows = commands.map((c) => ({
        project_id: projectId,
        name: c.name,
        app_label: c.appLabel,
        help_text: c.helpText,
        schema_json: c.schema === null || c.schema === undefined ? null : JSON.stringify(c.schema),
        refused: c.refused,
        max_concurrency: kept.get(c.name) ?? c.maxConcurrency,
        synced_at: c.syncedAt,
        read_only_default: keptReadOnly.get(c.name) ?? (c.readOnlyDefault ? 1 : 0),
        django_read_only: c.djangoReadOnly ? 1 : 0,
      }));
      await this.compiled.insertRows('insertCommands', COMMAND_COLUMNS, rows, (rows) => this.db.insertInto('commands').values(rows), trx);
      await this.compiled.run('setCommandsHash', [hash, projectId], (hash, projectId) => this.db.updateTable('projects').set({ commands_hash: hash }).where('id', '=', projectId), trx);
    });
  }

  async listCommands(projectId: string): Promise<Command[]> {
    return (await this.db.selectFrom('commands').selectAll().where('project_id', '=', projectId).orderBy('name').execute()).map(toCommand);
  }

  async getCommand(projectId: string, name: string): Promise<Command | undefined> {
    const r = await this.db.selectFrom('commands').selectAll().where('project_id', '=', projectId).where('name', '=', name).executeTakeFirst();
    return r && toCommand(r);
  }

  async setCommandReadOnly(projectId: string, name: string, readOnly: boolean): Promise<boolean> {
    const res = await this.db
      .updateTable('commands')
      .set({ read_only_default: readOnly ? 1 : 0 })
      .where('project_id', '=', projectId)
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async setCommandConcurrency(projectId: string, name: string, max: number | null): Promise<boolean> {
    const res = await this.db
      .updateTable('commands')
      .set({ max_concurrency: max })
      .where('project_id', '=', projectId)
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  // ---- executions ------------------------------------------------------------------------

  async createExecution(e: Execution, limit: number): Promise<CreateExecutionResult> {
    return (await this.createExecutions([{ execution: e, limit }]))[0];
  }

  /**
   * Creations of several callers, one transaction at a time (groupCommit.ts): each takes its
   * projects' row locks until its commit, so creators of one project wait for each other anyway.
   */
  private readonly creating = new GroupCommit<{ execution: Execution; limit: number }, CreateExecutionResult>((items) => this.createNow(items), CREATIONS_A_TRANSACTION);

  async createExecutions(items: ReadonlyArray<{ execution: Execution; limit: number }>): Promise<CreateExecutionResult[]> {
    return this.creating.submit(items);
  }

  private async createNow(items: ReadonlyArray<{ execution: Execution; limit: number }>): Promise<CreateExecutionResult[]> {
    return this.db.transaction().execute(async (trx) => {
      const projectIds = [...new Set(items.map((i) => i.execution.projectId))].sort();
      const commands = [...new Set(items.map((i) => i.execution.command))];
      if (this.caps.rowLocks) {
        // Serialises creators per project across server replicas, so the check below holds
        // (locked in id order, so two batches never wait for each other in a circle).
        await trx.selectFrom('projects').select('id').where('id', 'in', projectIds).orderBy('id').forUpdate().execute();
      }
      const key = (projectId: string, command: string) => `${projectId}\u0000${command}`;
      const active = new Map<string, number>();
      const countActive = (projectIds: readonly string[], commands: readonly string[]) =>
        this.db
          .selectFrom('executions')
          .select(['project_id', 'command', (eb) => eb.fn.countAll<number>().as('n')])
          .where('project_id', 'in', projectIds)
          .where('command', 'in', commands)
          .where('status', 'in', [...ACTIVE_STATUSES])
          .groupBy(['project_id', 'command']);
      // One execution of one command (what the API creates) is compiled once; a batch is built.
      const counted =
        projectIds.length === 1 && commands.length === 1
          ? (await this.compiled.run('countActiveOfCommand', [projectIds[0], commands[0]], (projectId, command) => countActive([projectId], [command]), trx)).rows
          : await trx.executeQuery(countActive(projectIds, commands).compile()).then((r) => r.rows);
      for (const r of counted) active.set(key(r.project_id, r.command), Number(r.n));
      const results: CreateExecutionResult[] = [];
      const rows: Array<ReturnType<typeof fromExecution>> = [];
      const madeHere = new Map<string, Execution[]>();
      for (const { execution: e, limit } of items) {
        const k = key(e.projectId, e.command);
        const n = active.get(k) ?? 0;
        if (n >= limit) {
          // Refused: name a few of the active ones, oldest first (this batch's own included).
          const stored = await trx.selectFrom('executions').selectAll().where('project_id', '=', e.projectId).where('command', '=', e.command)
            .where('status', 'in', [...ACTIVE_STATUSES]).orderBy('created_at').limit(10).execute();
          results.push({ created: false, active: [...stored.map(toExecution), ...(madeHere.get(k) ?? [])].slice(0, 10) });
          continue;
        }
        active.set(k, n + 1);
        madeHere.set(k, [...(madeHere.get(k) ?? []), e]);
        rows.push(fromExecution(e));
        results.push({ created: true });
      }
      // fromExecution gives every row the same columns.
      if (rows.length > 0) await this.compiled.insertRows('insertExecutions', Object.keys(rows[0]) as Array<keyof (typeof rows)[number]>, rows, (rows) => this.db.insertInto('executions').values(rows), trx);
      return results;
    });
  }

  async getExecution(id: string): Promise<Execution | undefined> {
    const [r] = (await this.compiled.run('getExecution', [id], (id) => this.db.selectFrom('executions').selectAll().where('id', '=', id))).rows;
    return r && toExecution(r);
  }

  async getExecutions(ids: readonly string[]): Promise<Execution[]> {
    const found: Execution[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      for (const r of await this.db.selectFrom('executions').selectAll().where('id', 'in', ids.slice(i, i + 500)).execute()) found.push(toExecution(r));
    }
    return found;
  }

  async listExecutions(f: ExecutionFilter, limit: number, cursor?: string): Promise<Page<Execution>> {
    let q = this.db.selectFrom('executions').selectAll();
    if (f.projectId) q = q.where('project_id', '=', f.projectId);
    if (f.projectIds) q = f.projectIds.length === 0 ? q.where(sql<boolean>`1 = 0`) : q.where('project_id', 'in', [...f.projectIds]);
    if (f.command) q = q.where('command', '=', f.command);
    if (f.statuses && f.statuses.length > 0) q = q.where('status', 'in', f.statuses);
    if (f.createdById) q = q.where('created_by_id', '=', f.createdById);
    if (f.createdAfter !== undefined) q = q.where('created_at', '>=', f.createdAfter);
    if (f.createdBefore !== undefined) q = q.where('created_at', '<', f.createdBefore);
    const after = decodeExecutionCursor(cursor);
    if (after) {
      q = q.where((eb) =>
        eb.or([eb('created_at', '<', after.at), eb.and([eb('created_at', '=', after.at), eb('id', '<', after.id)])]),
      );
    }
    const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit + 1).execute();
    const items = rows.slice(0, limit).map(toExecution);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(`${last.createdAt}:${last.id}`) : null };
  }

  async countExecutions(projectId: string, statuses: ExecutionStatus[]): Promise<number> {
    const row = await this.db
      .selectFrom('executions')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('project_id', '=', projectId)
      .where('status', 'in', statuses)
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async listDispatchable(projectId: string, limit: number, runnerId: string): Promise<Execution[]> {
    const build = (projectId: never, limit: never, runnerId: never) => {
      // Each part is read in created_at order along an index and cut at `limit`, so a long queue
      // is not read and sorted whole on every poll (775 µs a poll with 900 waiting, 150 now);
      // only ids are read until the `limit` offered are known, and then those rows (wide ones).
      const part = (name: string, rank: number, narrow: (q: SelectQueryBuilder<Database, 'executions', { id: string; created_at: number }>) => SelectQueryBuilder<Database, 'executions', { id: string; created_at: number }>) =>
        this.db
          .selectFrom((db) => narrow(db.selectFrom('executions').select(['id', 'created_at']).where('project_id', '=', projectId)).orderBy('created_at').limit(limit).as(name))
          .select(['id', 'created_at', sql.lit(rank).as('rank')]);
      const picked =
        // What no other runner was offered first (queued, or offered to this runner): runners polling together are offered different executions.
        part('queued', 0, (q) => q.where('status', '=', 'queued'))
          .unionAll(part('mine', 0, (q) => q.where('status', '=', 'dispatched').where('runner_id', '=', runnerId)))
          // Handed to a v2 runner, it is that runner's: only offers to v1 runners stay open to all of them.
          .unionAll(part('others', 1, (q) => q.where('status', '=', 'dispatched').where('runner_id', '<>', runnerId).where('runner_id', 'in', (eb) => eb.selectFrom('runners').select('id').where('protocol', '=', 'v1'))))
          .orderBy('rank')
          .orderBy('created_at')
          .limit(limit);
      return this.db.selectFrom('executions as e').innerJoin(picked.as('pick'), 'pick.id', 'e.id').selectAll('e').orderBy('pick.rank').orderBy('pick.created_at');
    };
    const { rows } = await this.compiled.run('listDispatchable', [projectId, limit, runnerId], build);
    return rows.map(toExecution);
  }

  async countQueued(projectId: string, limit: number): Promise<number> {
    const { rows } = await this.compiled.run('countQueued', [projectId, limit], (projectId, limit) =>
      this.db.selectFrom('executions').select('id').where('project_id', '=', projectId).where('status', '=', 'queued').limit(limit),
    );
    return rows.length;
  }

  async claimQueued(projectId: string, limit: number, patch: { runnerId: string; dispatchedAt: number }, readOnlyToo: boolean): Promise<Execution[]> {
    const build = (projectId: never, limit: never, runnerId: never, dispatchedAt: never) => {
      const oldest = (db: QueryCreator<Database>) => {
        let q = db.selectFrom('executions').select('id').where('project_id', '=', projectId).where('status', '=', 'queued');
        if (!readOnlyToo) q = q.where('read_only', '=', 0);
        return q.orderBy('created_at').limit(limit);
      };
      const claim = (from: QueryCreator<Database & { oldest: { id: string } }>) =>
        from
          .updateTable('executions')
          .set({ status: 'dispatched', runner_id: runnerId, dispatched_at: dispatchedAt })
          .where('id', 'in', (eb) => eb.selectFrom('oldest').select('oldest.id'));
      // SQLite runs one writer at a time: what the statement read is still queued.
      if (!this.caps.rowLocks) return claim(this.db.with('oldest', oldest)).returningAll();
      // PostgreSQL: rows another replica is claiming are left to it, not waited for. Materialized:
      // read once, so the limit holds (as `id IN (subquery)` PostgreSQL may read it again per row).
      return claim(this.db.with((cte) => cte('oldest').materialized(), (db) => oldest(db).forUpdate().skipLocked()))
        .where('status', '=', 'queued')
        .returningAll();
    };
    const { rows } = await this.compiled.run(`claimQueued:${readOnlyToo}`, [projectId, limit, patch.runnerId, patch.dispatchedAt], build);
    return rows.map(toExecution).sort((a, b) => a.createdAt - b.createdAt);
  }

  async listDispatchedTo(runnerId: string): Promise<Execution[]> {
    const rows = await this.db.selectFrom('executions').selectAll().where('status', '=', 'dispatched').where('runner_id', '=', runnerId).execute();
    return rows.map(toExecution);
  }

  async updateExecution(id: string, from: readonly ExecutionStatus[], patch: ExecutionPatch, projectId?: string): Promise<Execution | undefined> {
    const set: Partial<ExecutionsTable> = {};
    if (patch.status !== undefined) set.status = patch.status;
    if (patch.statusReason !== undefined) set.status_reason = patch.statusReason;
    if (patch.exitCode !== undefined) set.exit_code = patch.exitCode;
    if (patch.runnerId !== undefined) set.runner_id = patch.runnerId;
    if (patch.dispatchedAt !== undefined) set.dispatched_at = patch.dispatchedAt;
    if (patch.startedAt !== undefined) set.started_at = patch.startedAt;
    if (patch.finishedAt !== undefined) set.finished_at = patch.finishedAt;
    if (patch.cancelRequestedAt !== undefined) set.cancel_requested_at = patch.cancelRequestedAt;
    if (patch.cancelForce !== undefined) set.cancel_force = patch.cancelForce ? 1 : 0;
    if (patch.cancelReason !== undefined) set.cancel_reason = patch.cancelReason;
    if (patch.outputExpectedSeq !== undefined) set.output_expected_seq = patch.outputExpectedSeq;
    if (patch.startDeadline !== undefined) set.start_deadline = patch.startDeadline;
    // Compiled once per patch shape: the columns set, the number of statuses it may come from,
    // and whether the project is checked.
    const columns = Object.keys(set) as Array<keyof typeof set>;
    const inProject = projectId !== undefined;
    const values = [...columns.map((c) => set[c]), id, ...(inProject ? [projectId] : []), ...from];
    const build = (...slots: never[]) => {
      const fromSlot = columns.length + (inProject ? 2 : 1);
      const q = this.db
        .updateTable('executions')
        .set(Object.fromEntries(columns.map((c, i) => [c, slots[i]])))
        .where('id', '=', slots[columns.length])
        .where('status', 'in', slots.slice(fromSlot));
      return (inProject ? q.where('project_id', '=', slots[columns.length + 1]) : q).returningAll();
    };
    const [row] = (await this.compiled.run(`updateExecution:${columns.join(',')}:${from.length}:${inProject}`, values, build)).rows;
    return row && toExecution(row);
  }

  async recordLateEnd(id: string, end: { status: ExecutionStatus; exitCode: number | null; at: number }): Promise<boolean> {
    const res = await this.db
      .updateTable('executions')
      .set({ late_status: end.status, late_exit_code: end.exitCode })
      .where('id', '=', id)
      .where('status', '=', 'lost')
      .where('late_status', 'is', null)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  async listHeldByRunnersSeenBefore(cutoff: number): Promise<Execution[]> {
    const rows = await this.db
      .selectFrom('executions')
      .innerJoin('runners', 'runners.id', 'executions.runner_id')
      .selectAll('executions')
      .where('executions.status', 'in', ['dispatched', 'running'])
      .where('runners.last_seen_at', '<', cutoff)
      .execute();
    return rows.map(toExecution);
  }

  async listPastStartDeadline(now: number): Promise<Execution[]> {
    const rows = await this.db
      .selectFrom('executions')
      .selectAll()
      .where('status', 'in', ['queued', 'dispatched'])
      .where('start_deadline', '<', now)
      .limit(500)
      .execute();
    return rows.map(toExecution);
  }

  async listOverdue(now: number, graceMs: number): Promise<Execution[]> {
    const rows = await this.db
      .selectFrom('executions')
      .selectAll()
      .where('status', '=', 'running')
      .where('started_at', 'is not', null)
      .where((eb) => eb(eb('started_at', '+', eb(eb.ref('timeout_seconds'), '*', 1000)), '<', now - graceMs))
      .execute();
    return rows.map(toExecution);
  }

  // ---- output ----------------------------------------------------------------------------

  async appendOutput(c: NewOutputChunk): Promise<boolean> {
    const bytes = byteLength(c.data);
    const data = this.textValue(c.data);
    return this.db.transaction().execute(async (trx) => {
      const res = await trx
        .insertInto('output_chunks')
        .values({
          execution_id: c.executionId,
          seq: c.seq,
          stream: c.stream,
          data,
          line_times_json: JSON.stringify(c.lineTimes),
          received_at: c.receivedAt,
        })
        .onConflict((oc) => oc.columns(['execution_id', 'seq']).doNothing())
        .executeTakeFirst();
      if (Number(res.numInsertedOrUpdatedRows ?? 0) === 0) return false;
      await trx
        .updateTable('executions')
        .set((eb) => ({
          output_bytes: eb('output_bytes', '+', bytes),
          output_chunks: eb('output_chunks', '+', 1),
          output_last_seq: sql<number>`CASE WHEN output_last_seq > ${c.seq} THEN output_last_seq ELSE ${c.seq} END`,
          // v2 stores the runner's seqs as they are: its numbering and ours are one.
          runner_chunks: eb('runner_chunks', '+', 1),
          runner_last_seq: sql<number>`CASE WHEN runner_last_seq > ${c.seq} THEN runner_last_seq ELSE ${c.seq} END`,
        }))
        .where('id', '=', c.executionId)
        .execute();
      return true;
    });
  }

  async appendV1Part(executionId: string, chunkNumber: number, part: number, piece: Omit<NewOutputChunk, 'executionId' | 'seq'>): Promise<boolean> {
    const data = this.textValue(piece.data);
    return this.db.transaction().execute(async (trx) => {
      await ensureV1Chunk(trx, executionId, chunkNumber);
      // The claim on this part: only one writer (a request and its retry racing) stores it.
      const claimed = await trx
        .updateTable('v1_chunks')
        .set((eb) => ({ parts_stored: eb('parts_stored', '+', 1) }))
        .where('execution_id', '=', executionId)
        .where('chunk_number', '=', chunkNumber)
        .where('parts_stored', '=', part)
        .where('complete', '=', 0)
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) === 0) return false;
      let q = trx.selectFrom('executions').select('output_last_seq').where('id', '=', executionId);
      if (this.caps.rowLocks) q = q.forUpdate();
      const { output_last_seq: last } = await q.executeTakeFirstOrThrow();
      await trx
        .insertInto('output_chunks')
        .values({ execution_id: executionId, seq: last + 1, stream: piece.stream, data, line_times_json: JSON.stringify(piece.lineTimes), received_at: piece.receivedAt })
        .execute();
      await trx
        .updateTable('executions')
        .set((eb) => ({ output_bytes: eb('output_bytes', '+', byteLength(piece.data)), output_chunks: eb('output_chunks', '+', 1), output_last_seq: last + 1 }))
        .where('id', '=', executionId)
        .execute();
      return true;
    });
  }

  async completeV1Chunk(executionId: string, chunkNumber: number): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      await ensureV1Chunk(trx, executionId, chunkNumber);
      const done = await trx
        .updateTable('v1_chunks')
        .set({ complete: 1 })
        .where('execution_id', '=', executionId)
        .where('chunk_number', '=', chunkNumber)
        .where('complete', '=', 0)
        .executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) return false;
      await trx
        .updateTable('executions')
        .set((eb) => ({
          runner_chunks: eb('runner_chunks', '+', 1),
          runner_last_seq: sql<number>`CASE WHEN runner_last_seq > ${chunkNumber} THEN runner_last_seq ELSE ${chunkNumber} END`,
        }))
        .where('id', '=', executionId)
        .execute();
      return true;
    });
  }

  /**
   * Text for an output column, from UTF-8 bytes without decoding them. The bytes are valid UTF-8:
   * a v2 frame's are checked (decodeOutputFrame), v1's are encoded from JSON text (v1OutputBody). SQLite: a BLOB cast to TEXT is not re-encoded. PostgreSQL: node-postgres sends
   * a Buffer as a binary parameter, and the binary form of text is its UTF-8 bytes; only a NUL,
   * which PostgreSQL's text cannot hold, needs the string (NulFree replaces it).
   */
  private textValue(data: string | Uint8Array): string | RawBuilder<string> {
    if (typeof data === 'string') return data;
    if (this.caps.name === 'sqlite') return sql<string>`CAST(${data} AS TEXT)`;
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return bytes.includes(0) ? bytes.toString('utf8') : sql<string>`${bytes}`;
  }

  async readOutput(executionId: string, afterSeq: number, limit: number): Promise<OutputChunk[]> {
    const rows = await this.db
      .selectFrom('output_chunks')
      .selectAll()
      .where('execution_id', '=', executionId)
      .where('seq', '>', afterSeq)
      .orderBy('seq')
      .limit(limit)
      .execute();
    return rows.map(toChunk);
  }

  // ---- audit -----------------------------------------------------------------------------

  async appendAudit(e: NewAuditEvent): Promise<AuditEvent> {
    return this.auditChain.append(e);
  }

  async appendAudits(events: readonly NewAuditEvent[]): Promise<AuditEvent[]> {
    return this.auditChain.appendQueued(events);
  }

  async listAudit(f: AuditFilter, limit: number, cursor?: string): Promise<Page<AuditEvent>> {
    let q = this.db.selectFrom('audit_events').selectAll();
    if (f.projectId) q = q.where('project_id', '=', f.projectId);
    if (f.projectIds) q = f.projectIds.length === 0 ? q.where(sql<boolean>`1 = 0`) : q.where('project_id', 'in', [...f.projectIds]);
    if (f.executionId) q = q.where('execution_id', '=', f.executionId);
    if (f.action) q = q.where('action', '=', f.action);
    if (f.actorId) q = q.where('actor_id', '=', f.actorId);
    if (f.actorType) q = q.where('actor_type', '=', f.actorType);
    if (f.after !== undefined) q = q.where('at', '>=', f.after);
    if (f.before !== undefined) q = q.where('at', '<', f.before);
    const beforeId = decodeAuditCursor(cursor);
    if (beforeId !== undefined) q = q.where('id', '<', beforeId);
    const rows = await q.orderBy('id', 'desc').limit(limit + 1).execute();
    const items = rows.slice(0, limit).map(toAudit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > limit && last ? encodeCursor(String(last.id)) : null };
  }
}

/** The columns of a command as replaceCommands writes it. */
const COMMAND_COLUMNS = ['project_id', 'name', 'app_label', 'help_text', 'schema_json', 'refused', 'max_concurrency', 'synced_at', 'read_only_default', 'django_read_only'] as const;

// ---- row mapping -----------------------------------------------------------------------------

/** The row that follows a v1 chunk's parts, made by whichever of its writers comes first. */
async function ensureV1Chunk(trx: Transaction<Database>, executionId: string, chunkNumber: number): Promise<void> {
  await trx
    .insertInto('v1_chunks')
    .values({ execution_id: executionId, chunk_number: chunkNumber, parts_stored: 0, complete: 0 })
    .onConflict((oc) => oc.columns(['execution_id', 'chunk_number']).doNothing())
    .execute();
}

function byteLength(data: string | Uint8Array): number {
  return typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.byteLength;
}

function toUser(r: Selectable<Database['users']>): User {
  return {
    id: r.id,
    email: r.email,
    passwordHash: r.password_hash,
    isAdmin: Number(r.is_admin) === 1,
    createdAt: Number(r.created_at),
    disabledAt: r.disabled_at === null ? null : Number(r.disabled_at),
    removedAt: r.removed_at === null ? null : Number(r.removed_at),
    mustChangePassword: Number(r.must_change_password) === 1,
  };
}

function toToken(r: Selectable<Database['api_tokens']>): ApiToken {
  return {
    id: r.id,
    userId: r.user_id,
    name: r.name,
    prefix: r.prefix,
    tokenHash: r.token_hash,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
    projectIds: r.project_ids === null ? null : (JSON.parse(r.project_ids) as string[]),
    readOnly: Number(r.read_only) === 1,
    expiresAt: r.expires_at === null ? null : Number(r.expires_at),
  };
}

function toProject(r: Selectable<Database['projects']>): Project {
  return { id: r.id, name: r.name, commandsHash: r.commands_hash, createdAt: r.created_at };
}

function toRunnerKey(r: Selectable<Database['runner_keys']>): RunnerKey {
  return { id: r.id, projectId: r.project_id, name: r.name, prefix: r.prefix, keyHash: r.key_hash, createdAt: r.created_at, revokedAt: r.revoked_at };
}

function toRunner(r: Selectable<RunnersTable>): Runner {
  return {
    id: r.id,
    projectId: r.project_id,
    keyId: r.key_id,
    address: r.address,
    protocol: r.protocol as Runner['protocol'],
    instance: r.instance,
    hostname: r.hostname,
    maxConcurrency: r.max_concurrency,
    runnerVersion: r.runner_version,
    pythonVersion: r.python_version,
    djangoVersion: r.django_version,
    commandsHash: r.commands_hash,
    firstSeenAt: r.first_seen_at,
    lastSeenAt: r.last_seen_at,
    stoppedAt: r.stopped_at === null ? null : Number(r.stopped_at),
  };
}

function toCommand(r: Selectable<CommandsTable>): Command {
  return {
    projectId: r.project_id,
    name: r.name,
    appLabel: r.app_label,
    helpText: r.help_text,
    schema: r.schema_json === null ? null : JSON.parse(r.schema_json),
    refused: r.refused,
    maxConcurrency: r.max_concurrency,
    syncedAt: r.synced_at,
    readOnlyDefault: r.read_only_default === 1,
    djangoReadOnly: r.django_read_only === 1,
  };
}

function toExecution(r: Selectable<ExecutionsTable>): Execution {
  return {
    id: r.id,
    projectId: r.project_id,
    command: r.command,
    args: r.args,
    argv: JSON.parse(r.argv_json) as string[],
    status: r.status as ExecutionStatus,
    statusReason: r.status_reason,
    exitCode: r.exit_code,
    timeoutSeconds: r.timeout_seconds,
    metadataOnly: r.metadata_only === 1,
    readOnly: r.read_only === 1,
    createdAt: r.created_at,
    createdByType: r.created_by_type as Execution['createdByType'],
    createdById: r.created_by_id,
    createdByLabel: r.created_by_label,
    runnerId: r.runner_id,
    dispatchedAt: r.dispatched_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    cancelRequestedAt: r.cancel_requested_at,
    cancelForce: r.cancel_force === 1,
    cancelReason: r.cancel_reason as Execution['cancelReason'],
    outputBytes: Number(r.output_bytes),
    outputChunks: r.output_chunks,
    outputLastSeq: r.output_last_seq,
    outputExpectedSeq: r.output_expected_seq,
    lateStatus: r.late_status as ExecutionStatus | null,
    lateExitCode: r.late_exit_code,
    runnerLastSeq: r.runner_last_seq,
    runnerChunks: r.runner_chunks,
    startDeadline: r.start_deadline === null ? null : Number(r.start_deadline),
    scheduleId: r.schedule_id,
  };
}

function fromExecution(e: Execution): ExecutionsTable {
  return {
    id: e.id,
    project_id: e.projectId,
    command: e.command,
    args: e.args,
    argv_json: JSON.stringify(e.argv),
    status: e.status,
    status_reason: e.statusReason,
    exit_code: e.exitCode,
    timeout_seconds: e.timeoutSeconds,
    metadata_only: e.metadataOnly ? 1 : 0,
    read_only: e.readOnly ? 1 : 0,
    created_at: e.createdAt,
    created_by_type: e.createdByType,
    created_by_id: e.createdById,
    created_by_label: e.createdByLabel,
    runner_id: e.runnerId,
    dispatched_at: e.dispatchedAt,
    started_at: e.startedAt,
    finished_at: e.finishedAt,
    cancel_requested_at: e.cancelRequestedAt,
    cancel_force: e.cancelForce ? 1 : 0,
    cancel_reason: e.cancelReason,
    output_bytes: e.outputBytes,
    output_chunks: e.outputChunks,
    output_last_seq: e.outputLastSeq,
    output_expected_seq: e.outputExpectedSeq,
    late_status: e.lateStatus,
    late_exit_code: e.lateExitCode,
    runner_last_seq: e.runnerLastSeq,
    runner_chunks: e.runnerChunks,
    start_deadline: e.startDeadline,
    schedule_id: e.scheduleId,
  };
}

function toChunk(r: Selectable<OutputChunksTable>): OutputChunk {
  return {
    executionId: r.execution_id,
    seq: r.seq,
    stream: r.stream as OutputChunk['stream'],
    data: r.data,
    lineTimes: JSON.parse(r.line_times_json) as OutputChunk['lineTimes'],
    receivedAt: r.received_at,
  };
}

function toAudit(r: Selectable<AuditEventsTable>): AuditEvent {
  return {
    id: Number(r.id),
    at: r.at,
    actorType: r.actor_type as AuditEvent['actorType'],
    actorId: r.actor_id,
    actorLabel: r.actor_label,
    address: r.address,
    action: r.action,
    projectId: r.project_id,
    executionId: r.execution_id,
    outcome: r.outcome as AuditEvent['outcome'],
    details: JSON.parse(r.details_json) as Record<string, unknown>,
  };
}

function encodeCursor(raw: string): string {
  return Buffer.from(raw, 'utf8').toString('base64url');
}

/** What encodeCursor made of `shape`-matching text; anything else is refused, never read as page one. */
function decodeCursor(cursor: string, shape: RegExp): string {
  const raw = /^[A-Za-z0-9_-]{1,200}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  if (!shape.test(raw) || encodeCursor(raw) !== cursor) {
    throw new UserError('DC_VALIDATION', 'cursor is not one this server gave out; pass next_cursor of the previous page as it is.', { field: 'cursor' });
  }
  return raw;
}

function decodeExecutionCursor(cursor: string | undefined): { at: number; id: string } | undefined {
  if (!cursor) return undefined;
  const raw = decodeCursor(cursor, /^\d{1,15}:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  const sep = raw.indexOf(':');
  return { at: Number(raw.slice(0, sep)), id: raw.slice(sep + 1) };
}

function decodeAuditCursor(cursor: string | undefined): number | undefined {
  return cursor ? Number(decodeCursor(cursor, /^[1-9]\d{0,14}$/)) : undefined;
}

