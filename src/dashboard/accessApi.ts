/**
 * The dashboard's calls for people and access: the caller (/api/v1/me), their password, tokens
 * and sessions, users (owners), a project's members and CI tokens. REST in
 * src/server/routes/users.ts and members.ts; the views are the server's, from shared/accessApi.ts.
 */
import { request, withQuery } from './api.js';
import type { CiTokenView, CreateCiTokenRequest, CreateTokenRequest, MemberView, MeView, SessionView, TokenView, UserView } from '../shared/accessApi.js';
import type { ProjectRole } from '../domain/roles.js';

export type { CiTokenView, MemberView, MeView, SessionView, TokenView, UserView };

const enc = encodeURIComponent;
const items = <T>(path: string, signal?: AbortSignal) => request<{ items: T[] }>('GET', path, undefined, signal);

export const accessApi = {
  me: (signal?: AbortSignal) => request<MeView>('GET', '/api/v1/me', undefined, signal),
  changePassword: (currentPassword: string, newPassword: string) =>
    request<{ ok: true }>('POST', '/api/v1/me/password', { current_password: currentPassword, new_password: newPassword }),

  /** Mine, or everyone's (`all`, owners). */
  tokens: (all: boolean, signal?: AbortSignal) => items<TokenView>(withQuery('/api/v1/tokens', { all: all ? 'true' : undefined }), signal),
  createToken: (body: CreateTokenRequest) => request<TokenView & { token: string }>('POST', '/api/v1/tokens', body),
  revokeToken: (id: string) => request<{ ok: true }>('POST', `/api/v1/tokens/${enc(id)}/revoke`),

  sessions: (email: string, signal?: AbortSignal) => items<SessionView>(`/api/v1/users/${enc(email)}/sessions`, signal),
  endSession: (email: string, id: string) => request<{ ok: true }>('DELETE', `/api/v1/users/${enc(email)}/sessions/${enc(id)}`),

  users: (signal?: AbortSignal) => items<UserView>('/api/v1/users', signal),
  createUser: (email: string, password: string, owner: boolean) => request<UserView>('POST', '/api/v1/users', { email, password, owner, one_time_password: true }),
  updateUser: (email: string, change: { disabled?: boolean; owner?: boolean }) => request<UserView>('PATCH', `/api/v1/users/${enc(email)}`, change),
  removeUser: (email: string) => request<{ ok: true }>('DELETE', `/api/v1/users/${enc(email)}`),

  members: (project: string, signal?: AbortSignal) => items<MemberView>(`/api/v1/projects/${enc(project)}/members`, signal),
  setMember: (project: string, email: string, role: ProjectRole) =>
    request<{ user: UserView; role: ProjectRole; added: boolean }>('PUT', `/api/v1/projects/${enc(project)}/members`, { email, role }),
  removeMember: (project: string, email: string) => request<{ ok: true }>('DELETE', `/api/v1/projects/${enc(project)}/members/${enc(email)}`),

  ciTokens: (project: string, signal?: AbortSignal) => items<CiTokenView>(`/api/v1/projects/${enc(project)}/ci-tokens`, signal),
  createCiToken: (project: string, body: CreateCiTokenRequest) => request<CiTokenView & { token: string }>('POST', `/api/v1/projects/${enc(project)}/ci-tokens`, body),
  revokeCiToken: (project: string, id: string) => request<{ ok: true }>('POST', `/api/v1/projects/${enc(project)}/ci-tokens/${enc(id)}/revoke`),
};
