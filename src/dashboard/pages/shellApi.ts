/** The dashboard's calls for audited shells (REST in src/server/routes/shells.ts). */
import { request } from '../api.js';

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

const enc = encodeURIComponent;

export const shellApi = {
  list: (project: string, signal?: AbortSignal) => request<{ items: ShellView[] }>('GET', `/api/v1/projects/${enc(project)}/shells`, undefined, signal),
  get: (id: string, signal?: AbortSignal) => request<ShellView>('GET', `/api/v1/shells/${enc(id)}`, undefined, signal),
  open: (project: string, body: { write: boolean; reason?: string; cols: number; rows: number }) => request<ShellView>('POST', `/api/v1/projects/${enc(project)}/shells`, body),
  end: (id: string) => request<ShellView>('DELETE', `/api/v1/shells/${enc(id)}`),
  settings: (project: string, signal?: AbortSignal) => request<ShellSettingsView>('GET', `/api/v1/projects/${enc(project)}/shell-settings`, undefined, signal),
  saveSettings: (project: string, body: { enabled?: boolean; idle_timeout_seconds?: number }) => request<ShellSettingsView>('PUT', `/api/v1/projects/${enc(project)}/shell-settings`, body),
};

/** Where the browser attaches to a shell: the same host, ws or wss as the page. */
export function attachUrl(path: string): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}
