/** CommandSettingsStore over Kysely, for SQLite and PostgreSQL. */
import type { Kysely, Selectable } from 'kysely';
import type { Database } from './schema.js';
import type { CommandSettingsStore } from './commandSettingsStore.js';
import { defaultSettings, type ApproverRole, type CommandSettings } from '../domain/commandSettings.js';
import type { Command } from '../domain/model.js';

declare module './schema.js' {
  interface Database {
    command_settings: CommandSettingsTable;
  }
}

export interface CommandSettingsTable {
  project_id: string;
  command: string;
  metadata_only: number;
  default_timeout_seconds: number | null;
  requires_approval: number;
  approval_pattern: string | null;
  approver_role: string;
  approval_expiry_seconds: number;
  updated_at: number;
  updated_by: string;
}

const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export class CommandSettingsSql implements CommandSettingsStore {
  /** Nothing here differs between SQLite and PostgreSQL. */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly toCommand: (r: Selectable<Database['commands']>) => Command,
  ) {}

  async getCommandsWithSettings(projectId: string, names: readonly string[]): Promise<Array<{ command: Command; settings: CommandSettings }>> {
    const found: Array<{ command: Command; settings: CommandSettings }> = [];
    for (let i = 0; i < names.length; i += 500) {
      const rows = await this.db
        .selectFrom('commands as c')
        .leftJoin('command_settings as s', (j) => j.onRef('s.project_id', '=', 'c.project_id').onRef('s.command', '=', 'c.name'))
        .selectAll('c')
        .select(['s.command as s_command', 's.metadata_only as s_metadata_only', 's.default_timeout_seconds as s_default_timeout_seconds', 's.requires_approval as s_requires_approval'])
        .select(['s.approval_pattern as s_approval_pattern', 's.approver_role as s_approver_role', 's.approval_expiry_seconds as s_approval_expiry_seconds', 's.updated_at as s_updated_at', 's.updated_by as s_updated_by'])
        .where('c.project_id', '=', projectId)
        .where('c.name', 'in', names.slice(i, i + 500))
        .execute();
      for (const r of rows) {
        const command = this.toCommand(r);
        const set =
          r.s_command === null
            ? defaultSettings(projectId, r.name)
            : toSettings({
                project_id: projectId,
                command: r.name,
                metadata_only: r.s_metadata_only!,
                default_timeout_seconds: r.s_default_timeout_seconds,
                requires_approval: r.s_requires_approval!,
                approval_pattern: r.s_approval_pattern,
                approver_role: r.s_approver_role!,
                approval_expiry_seconds: r.s_approval_expiry_seconds!,
                updated_at: r.s_updated_at!,
                updated_by: r.s_updated_by!,
              });
        found.push({ command, settings: { ...set, maxConcurrency: command.maxConcurrency, readOnlyDefault: command.readOnlyDefault } });
      }
    }
    return found;
  }

  async getMany(projectId: string, commands: readonly string[]): Promise<CommandSettings[]> {
    const found = new Map<string, CommandSettings>();
    for (let i = 0; i < commands.length; i += 500) {
      const names = commands.slice(i, i + 500);
      if (names.length === 0) continue;
      const rows = await this.db.selectFrom('command_settings').selectAll().where('project_id', '=', projectId).where('command', 'in', names).execute();
      for (const r of rows) found.set(r.command, toSettings(r));
      const catalogue = await this.db
        .selectFrom('commands')
        .select(['name', 'max_concurrency', 'read_only_default'])
        .where('project_id', '=', projectId)
        .where('name', 'in', names)
        .execute();
      for (const c of catalogue) {
        const s = found.get(c.name) ?? defaultSettings(projectId, c.name);
        found.set(c.name, { ...s, maxConcurrency: numOrNull(c.max_concurrency), readOnlyDefault: Number(c.read_only_default) === 1 });
      }
    }
    return [...found.values()];
  }

  async put(s: CommandSettings): Promise<boolean> {
    return this.db.transaction().execute(async (trx) => {
      const res = await trx
        .updateTable('commands')
        .set({ max_concurrency: s.maxConcurrency, read_only_default: s.readOnlyDefault ? 1 : 0 })
        .where('project_id', '=', s.projectId)
        .where('name', '=', s.command)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      const values = {
        project_id: s.projectId,
        command: s.command,
        metadata_only: s.metadataOnly ? 1 : 0,
        default_timeout_seconds: s.defaultTimeoutSeconds,
        requires_approval: s.requiresApproval ? 1 : 0,
        approval_pattern: s.approvalPattern,
        approver_role: s.approverRole,
        approval_expiry_seconds: s.approvalExpirySeconds,
        updated_at: s.updatedAt ?? 0,
        updated_by: s.updatedBy ?? '',
      };
      const { project_id: _p, command: _c, ...changes } = values;
      await trx
        .insertInto('command_settings')
        .values(values)
        .onConflict((oc) => oc.columns(['project_id', 'command']).doUpdateSet(changes))
        .execute();
      return true;
    });
  }
}

function toSettings(r: Selectable<CommandSettingsTable>): CommandSettings {
  return {
    projectId: r.project_id,
    command: r.command,
    metadataOnly: Number(r.metadata_only) === 1,
    defaultTimeoutSeconds: numOrNull(r.default_timeout_seconds),
    maxConcurrency: null,
    readOnlyDefault: false,
    requiresApproval: Number(r.requires_approval) === 1,
    approvalPattern: r.approval_pattern,
    approverRole: r.approver_role as ApproverRole,
    approvalExpirySeconds: Number(r.approval_expiry_seconds),
    updatedAt: Number(r.updated_at),
    updatedBy: r.updated_by,
  };
}
