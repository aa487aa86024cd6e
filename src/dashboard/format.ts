/** How times, durations, sizes and execution statuses read on the page. */
import type { ExecutionView } from '../shared/api.js';
import { h } from './dom.js';

export const TERMINAL = ['succeeded', 'failed', 'timed_out', 'cancelled', 'rejected', 'lost', 'expired'];
export const ACTIVE = ['queued', 'awaiting_approval', 'dispatched', 'running'];
export const FAILED = ['failed', 'timed_out', 'rejected', 'lost', 'expired'];
export const ALL_STATUSES = [...ACTIVE, ...TERMINAL];

export const isEnded = (e: Pick<ExecutionView, 'status'>) => TERMINAL.includes(e.status);

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  const hours = Math.floor(m / 60);
  return `${hours} h ${m - hours * 60} min`;
}

/** Elapsed time of an execution: its duration when ended, the time so far when running. */
export function elapsed(e: ExecutionView, now = Date.now()): string {
  if (e.duration_ms !== null) return duration(e.duration_ms);
  if (e.started_at && !isEnded(e)) return duration(now - Date.parse(e.started_at));
  return '—';
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return 'never';
  const s = Math.round((now - Date.parse(iso)) / 1000);
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  const sameDay = d.toDateString() === new Date().toDateString();
  return sameDay
    ? d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' })
    : d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** A <time> element showing a short local time, with the exact one on hover. */
export function timeEl(iso: string | null | undefined, relative = false): HTMLElement {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, relative ? ago(iso) : when(iso));
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

const STATUS_LABEL: Record<string, string> = { timed_out: 'timed out', awaiting_approval: 'awaiting approval' };

export function statusBadge(status: string, cancelRequested = false): HTMLElement {
  const label = STATUS_LABEL[status] ?? status;
  return h('span', { class: `badge status-${status}`, 'data-status': status }, cancelRequested && !TERMINAL.includes(status) ? `${label} · cancelling` : label);
}

/** The command line as a person would type it. */
export function commandLine(e: Pick<ExecutionView, 'command' | 'args'>): string {
  return e.args ? `${e.command} ${e.args}` : e.command;
}

/** `datetime-local` input value ↔ ISO time. */
export function toLocalInput(iso: string | null): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
export function fromLocalInput(value: string): string {
  if (!value) return '';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}
