/**
 * The dashboard's REST client. It signs in with the session cookie (same origin) and sends the
 * session's CSRF token on every state-changing request. Errors arrive as `{error, code, details}`
 * and become an ApiError whose message is the server's, safe to show.
 */
import type {
  AuditChainView,
  AuditEventView,
  CommandView,
  ErrorBody,
  ExecutionView,
  OutputChunkView,
  PageView,
  ProjectView,
  RunnerKeyView,
  RunnerView,
} from '../shared/api.js';
import type { UserView } from '../shared/accessApi.js';

export type { TokenView, UserView } from '../shared/accessApi.js';
/** The person signed in: the server's user view (owner, disabled, must_change_password...). */
export type SessionUser = UserView;
export interface SessionView {
  user: SessionUser;
  csrf_token: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

let csrfToken: string | null = null;
let onUnauthenticated: (() => void) | null = null;
let onRefused: ((err: ApiError) => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when the session ran out in the middle of something: the app goes back to sign-in. */
export function whenUnauthenticated(fn: () => void): void {
  onUnauthenticated = fn;
}

/**
 * Called when the server refused a call (403, or 404 for something the caller may no longer
 * see): the caller's role may have changed, or the password must be changed first.
 */
export function whenRefused(fn: (err: ApiError) => void): void {
  onRefused = fn;
}

type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin', signal });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new ApiError(0, 'DC_NETWORK', 'The server cannot be reached. Check your connection and try again.');
  }
  const text = await res.text();
  let data: unknown = undefined;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }
  if (!res.ok) {
    const e = (data ?? {}) as Partial<ErrorBody>;
    const err = new ApiError(res.status, e.code ?? `HTTP_${res.status}`, e.error ?? `The server answered ${res.status} ${res.statusText}.`, (e.details as Record<string, unknown>) ?? {});
    if (res.status === 401 && !path.startsWith('/api/v1/session')) onUnauthenticated?.();
    if (res.status === 403 || res.status === 404) onRefused?.(err);
    throw err;
  }
  return data as T;
}

const get = <T>(path: string, query?: Query, signal?: AbortSignal) => request<T>('GET', withQuery(path, query), undefined, signal);
const post = <T>(path: string, body?: unknown) => request<T>('POST', path, body ?? {});
const enc = encodeURIComponent;

export interface ExecutionFilters {
  project?: string;
  command?: string;
  status?: string;
  created_by?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}
export interface AuditFilters {
  project?: string;
  execution?: string;
  action?: string;
  actor_type?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

export const api = {
  session: () => request<SessionView>('GET', '/api/v1/session'),
  signIn: (email: string, password: string) => request<SessionView>('POST', '/api/v1/session', { email, password }),
  signOut: () => request<unknown>('DELETE', '/api/v1/session'),

  projects: (signal?: AbortSignal) => get<{ items: ProjectView[] }>('/api/v1/projects', {}, signal),
  createProject: (name: string) => post<{ project: ProjectView; runner_key: RunnerKeyView & { key: string } }>('/api/v1/projects', { name }),
  runners: (project: string, signal?: AbortSignal) => get<{ items: RunnerView[] }>(`/api/v1/projects/${enc(project)}/runners`, {}, signal),
  commands: (project: string, signal?: AbortSignal) => get<{ items: CommandView[] }>(`/api/v1/projects/${enc(project)}/commands`, {}, signal),
  keys: (project: string) => get<{ items: RunnerKeyView[] }>(`/api/v1/projects/${enc(project)}/keys`),
  createKey: (project: string, name: string) => post<RunnerKeyView & { key: string }>(`/api/v1/projects/${enc(project)}/keys`, { name }),
  revokeKey: (project: string, id: string) => post<RunnerKeyView>(`/api/v1/projects/${enc(project)}/keys/${enc(id)}/revoke`),

  createExecution: (project: string, body: { command: string; argv?: string[]; args?: string; timeout?: number; read_only?: boolean }) =>
    post<ExecutionView>(`/api/v1/projects/${enc(project)}/executions`, body),
  executions: (filters: ExecutionFilters, signal?: AbortSignal) => get<PageView<ExecutionView>>('/api/v1/executions', { ...filters }, signal),
  execution: (id: string, signal?: AbortSignal) => get<ExecutionView>(`/api/v1/executions/${enc(id)}`, {}, signal),
  cancel: (id: string, force: boolean) => post<ExecutionView>(`/api/v1/executions/${enc(id)}/cancel`, force ? { force: true } : {}),
  chunks: (id: string, after: number, limit: number, signal?: AbortSignal) =>
    get<PageView<OutputChunkView>>(`/api/v1/executions/${enc(id)}/output/chunks`, { after, limit }, signal),
  outputUrl: (id: string) => `/api/v1/executions/${enc(id)}/output`,
  eventsUrl: (id: string, after: number) => withQuery(`/api/v1/executions/${enc(id)}/events`, { after: after > 0 ? after : undefined }),

  audit: (filters: AuditFilters, signal?: AbortSignal) => get<PageView<AuditEventView>>('/api/v1/audit', { ...filters }, signal),
  auditChain: (signal?: AbortSignal) => get<AuditChainView>('/api/v1/audit/chain', undefined, signal),
  auditExportUrl: (format: 'csv' | 'jsonl', filters: AuditFilters) => withQuery('/api/v1/audit/export', { ...filters, limit: undefined, cursor: undefined, format }),

  users: (signal?: AbortSignal) => get<{ items: UserView[] }>('/api/v1/users', {}, signal),
};
