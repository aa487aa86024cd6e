/** The dashboard's calls for audited shells (REST in src/server/routes/shells.ts). */
import { request } from '../api.js';
import type { ShellSettingsView, ShellView } from '../../shared/shellsApi.js';

export type { ShellSettingsView, ShellView };

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
