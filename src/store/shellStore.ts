/**
 * The store's part for audited shells: sessions, their asciicast recordings (written in parts as
 * a session goes, so a long session never sits in memory), and each project's shell settings.
 * Implemented once over SQLite and PostgreSQL in shellSql.ts.
 *
 * A session's states:  starting ──▶ open ──▶ ended
 *                          └──────▶ refused          (the runner or the Django side said no)
 *                          └──────▶ ended            (the runner vanished before answering)
 */
export type ShellStatus = 'starting' | 'open' | 'ended' | 'refused';

export interface ShellSession {
  id: string;
  projectId: string;
  userId: string;
  userLabel: string;
  runnerId: string | null;
  status: ShellStatus;
  /** What the shell enforces now (the last the runner confirmed, or asked at the start). */
  readOnly: boolean;
  becameWritable: boolean;
  cols: number;
  rows: number;
  openedAt: number;
  endedAt: number | null;
  endReason: string | null;
  exitCode: number | null;
  recordingBytes: number;
  recordingParts: number;
}

export interface ShellSettings {
  projectId: string;
  enabled: boolean;
  idleTimeoutSeconds: number;
  updatedAt: number;
  updatedBy: string;
}

export type ShellSessionPatch = Partial<Pick<ShellSession, 'status' | 'readOnly' | 'becameWritable' | 'endedAt' | 'endReason' | 'exitCode' | 'runnerId'>>;

export interface ShellStore {
  createSession(s: ShellSession): Promise<void>;
  getSession(id: string): Promise<ShellSession | undefined>;
  /** Newest first. */
  listSessions(projectId: string, limit: number): Promise<ShellSession[]>;
  updateSession(id: string, patch: ShellSessionPatch): Promise<void>;
  /** Appends one part of the recording (asciicast event lines) and counts its bytes. */
  appendRecording(id: string, seq: number, data: string): Promise<void>;
  /** Parts in order, from `afterSeq`, at most `limit` of them. */
  readRecording(id: string, afterSeq: number, limit: number): Promise<Array<{ seq: number; data: string }>>;
  /** Marks live sessions as relayed now (the server process holding them is alive). */
  touchSessions(ids: readonly string[], at: number): Promise<void>;
  /** Sessions still starting or open that no server touched since `before`: their server stopped. */
  listStale(before: number, limit: number): Promise<ShellSession[]>;
  /** Ends one such session, unless it was touched or ended meanwhile; true when this call ended it. */
  endIfStale(id: string, before: number, at: number, reason: string): Promise<boolean>;
  getSettings(projectId: string): Promise<ShellSettings | undefined>;
  putSettings(s: ShellSettings): Promise<void>;
}
