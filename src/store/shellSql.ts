/** ShellStore over Kysely, for SQLite and PostgreSQL. */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database } from './schema.js';
import type { ShellSession, ShellSessionPatch, ShellSettings, ShellStatus, ShellStore } from './shellStore.js';

declare module './schema.js' {
  interface Database {
    shell_sessions: ShellSessionsTable;
    shell_recording_parts: ShellRecordingPartsTable;
    shell_settings: ShellSettingsTable;
  }
}

export interface ShellSessionsTable {
  id: string;
  project_id: string;
  user_id: string;
  user_label: string;
  runner_id: string | null;
  status: string;
  read_only: number;
  became_writable: number;
  cols: number;
  rows: number;
  opened_at: number;
  ended_at: number | null;
  end_reason: string | null;
  exit_code: number | null;
  recording_bytes: number;
  recording_parts: number;
  last_seen_at: number;
}

export interface ShellRecordingPartsTable {
  session_id: string;
  seq: number;
  data: string;
}

export interface ShellSettingsTable {
  project_id: string;
  enabled: number;
  idle_timeout_seconds: number;
  updated_at: number;
  updated_by: string;
}

const num = (v: unknown): number => Number(v);
const numOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

function toSession(r: Selectable<ShellSessionsTable>): ShellSession {
  return {
    id: r.id,
    projectId: r.project_id,
    userId: r.user_id,
    userLabel: r.user_label,
    runnerId: r.runner_id,
    status: r.status as ShellStatus,
    readOnly: num(r.read_only) === 1,
    becameWritable: num(r.became_writable) === 1,
    cols: num(r.cols),
    rows: num(r.rows),
    openedAt: num(r.opened_at),
    endedAt: numOrNull(r.ended_at),
    endReason: r.end_reason,
    exitCode: numOrNull(r.exit_code),
    recordingBytes: num(r.recording_bytes),
    recordingParts: num(r.recording_parts),
  };
}

export class ShellSql implements ShellStore {
  /** Nothing here differs between SQLite and PostgreSQL. */
  constructor(private readonly db: Kysely<Database>) {}

  async createSession(s: ShellSession): Promise<void> {
    await this.db
      .insertInto('shell_sessions')
      .values({
        id: s.id,
        project_id: s.projectId,
        user_id: s.userId,
        user_label: s.userLabel,
        runner_id: s.runnerId,
        status: s.status,
        read_only: s.readOnly ? 1 : 0,
        became_writable: s.becameWritable ? 1 : 0,
        cols: s.cols,
        rows: s.rows,
        opened_at: s.openedAt,
        ended_at: s.endedAt,
        end_reason: s.endReason,
        exit_code: s.exitCode,
        recording_bytes: s.recordingBytes,
        recording_parts: s.recordingParts,
        last_seen_at: s.openedAt,
      })
      .execute();
  }

  async getSession(id: string): Promise<ShellSession | undefined> {
    const r = await this.db.selectFrom('shell_sessions').selectAll().where('id', '=', id).executeTakeFirst();
    return r && toSession(r);
  }

  async listSessions(projectId: string, limit: number): Promise<ShellSession[]> {
    const rows = await this.db.selectFrom('shell_sessions').selectAll().where('project_id', '=', projectId).orderBy('opened_at', 'desc').orderBy('id').limit(limit).execute();
    return rows.map(toSession);
  }

  async updateSession(id: string, p: ShellSessionPatch): Promise<void> {
    const set: Partial<ShellSessionsTable> = {};
    if (p.status !== undefined) set.status = p.status;
    if (p.readOnly !== undefined) set.read_only = p.readOnly ? 1 : 0;
    if (p.becameWritable !== undefined) set.became_writable = p.becameWritable ? 1 : 0;
    if (p.endedAt !== undefined) set.ended_at = p.endedAt;
    if (p.endReason !== undefined) set.end_reason = p.endReason;
    if (p.exitCode !== undefined) set.exit_code = p.exitCode;
    if (p.runnerId !== undefined) set.runner_id = p.runnerId;
    if (Object.keys(set).length === 0) return;
    await this.db.updateTable('shell_sessions').set(set).where('id', '=', id).execute();
  }

  async appendRecording(id: string, seq: number, data: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      await trx.insertInto('shell_recording_parts').values({ session_id: id, seq, data }).execute();
      await trx
        .updateTable('shell_sessions')
        .set({ recording_bytes: sql`recording_bytes + ${Buffer.byteLength(data)}`, recording_parts: sql`recording_parts + 1` })
        .where('id', '=', id)
        .execute();
    });
  }

  async readRecording(id: string, afterSeq: number, limit: number): Promise<Array<{ seq: number; data: string }>> {
    const rows = await this.db.selectFrom('shell_recording_parts').select(['seq', 'data']).where('session_id', '=', id).where('seq', '>', afterSeq).orderBy('seq').limit(limit).execute();
    return rows.map((r) => ({ seq: num(r.seq), data: r.data }));
  }

  async touchSessions(ids: readonly string[], at: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db.updateTable('shell_sessions').set({ last_seen_at: at }).where('id', 'in', [...ids]).execute();
  }

  async listStale(before: number, limit: number): Promise<ShellSession[]> {
    const rows = await this.db.selectFrom('shell_sessions').selectAll().where('status', 'in', ['starting', 'open']).where('last_seen_at', '<', before).limit(limit).execute();
    return rows.map(toSession);
  }

  async endIfStale(id: string, before: number, at: number, reason: string): Promise<boolean> {
    const r = await this.db
      .updateTable('shell_sessions')
      .set({ status: 'ended', ended_at: at, end_reason: reason })
      .where('id', '=', id)
      .where('status', 'in', ['starting', 'open'])
      .where('last_seen_at', '<', before)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async getSettings(projectId: string): Promise<ShellSettings | undefined> {
    const r = await this.db.selectFrom('shell_settings').selectAll().where('project_id', '=', projectId).executeTakeFirst();
    return r && { projectId: r.project_id, enabled: num(r.enabled) === 1, idleTimeoutSeconds: num(r.idle_timeout_seconds), updatedAt: num(r.updated_at), updatedBy: r.updated_by };
  }

  async putSettings(s: ShellSettings): Promise<void> {
    const values = { project_id: s.projectId, enabled: s.enabled ? 1 : 0, idle_timeout_seconds: s.idleTimeoutSeconds, updated_at: s.updatedAt, updated_by: s.updatedBy };
    await this.db
      .insertInto('shell_settings')
      .values(values)
      .onConflict((oc) => oc.column('project_id').doUpdateSet({ enabled: values.enabled, idle_timeout_seconds: values.idle_timeout_seconds, updated_at: values.updated_at, updated_by: values.updated_by }))
      .execute();
  }
}
