/** The dashboard's calls to the schedules API (wire types from shared/schedulesApi.ts). */
import type { OccurrenceView, PreviewView, RunNowView, ScheduleView, TimelineView } from '../../shared/schedulesApi.js';
import { request, withQuery } from '../api.js';

const enc = encodeURIComponent;

export const schedulesApi = {
  list: (project: string | undefined, signal?: AbortSignal) => request<{ items: ScheduleView[] }>('GET', withQuery('/api/v1/schedules', { project, recent: 20 }), undefined, signal),
  get: (id: string, signal?: AbortSignal) => request<ScheduleView>('GET', `/api/v1/schedules/${enc(id)}`, undefined, signal),
  occurrences: (id: string, signal?: AbortSignal) => request<{ items: OccurrenceView[] }>('GET', withQuery(`/api/v1/schedules/${enc(id)}/occurrences`, { limit: 100 }), undefined, signal),
  preview: (cron: string, timezone: string, count: number, signal?: AbortSignal) =>
    request<PreviewView>('GET', withQuery('/api/v1/schedules/preview', { cron, timezone, count }), undefined, signal),
  timeline: (hours: number, signal?: AbortSignal) => request<TimelineView>('GET', withQuery('/api/v1/schedules/timeline', { hours }), undefined, signal),
  create: (body: Record<string, unknown>) => request<ScheduleView>('POST', '/api/v1/schedules', body),
  update: (id: string, body: Record<string, unknown>) => request<ScheduleView>('PATCH', `/api/v1/schedules/${enc(id)}`, body),
  pause: (id: string) => request<ScheduleView>('POST', `/api/v1/schedules/${enc(id)}/pause`, {}),
  resume: (id: string) => request<ScheduleView>('POST', `/api/v1/schedules/${enc(id)}/resume`, {}),
  runNow: (id: string) => request<RunNowView>('POST', `/api/v1/schedules/${enc(id)}/run`, {}),
  remove: (id: string) => request<ScheduleView>('DELETE', `/api/v1/schedules/${enc(id)}`),
};

export const schedulesPath = '/schedules';
export const schedulePath = (id: string) => `/schedules/${encodeURIComponent(id)}`;
