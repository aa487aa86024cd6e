/** The REST views of audited shells (src/server/routes/shells.ts), as the CLI and the dashboard read them. */

export interface ShellView {
  id: string;
  project: string;
  user: string;
  user_id: string;
  status: 'starting' | 'open' | 'ended' | 'refused';
  live: boolean;
  read_only: boolean;
  became_writable: boolean;
  opened_at: string;
  ended_at: string | null;
  duration_ms: number | null;
  end_reason: string | null;
  exit_code: number | null;
  recording_bytes: number;
  attach_path: string;
  recording_path: string;
}

export interface ShellSettingsView {
  enabled: boolean;
  idle_timeout_seconds: number;
  updated_at: string | null;
  updated_by: string | null;
}
