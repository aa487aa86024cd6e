/**
 * What a notification says, made from an event at the time it is sent: project, command,
 * arguments, who or which schedule, status, exit code, duration, a link to the execution and the
 * last lines of its output (never for a metadata-only command). Senders render it for Slack,
 * webhooks and email.
 */
import type { Delivery, NotificationEvent } from '../../store/notificationStore.js';
import type { Core } from '../context.js';
import { outputTail } from '../executionWait.js';
import { TEST_EVENT } from './kinds.js';

export interface Message {
  /** One line: "shop: migrate failed (exit code 1)". */
  subject: string;
  tone: 'bad' | 'good' | 'warning' | 'info';
  fields: Array<[label: string, value: string]>;
  link: string | null;
  /** Last lines of output. */
  tail: string | null;
  /** For digests: one line (and link) per collapsed notification. */
  items: Array<{ subject: string; link: string | null; at: number }>;
  event: NotificationEvent | null;
  kinds: string[];
}

const TAIL_LINES = 20;
const TAIL_CHARS = 3000;
const DIGEST_ITEMS = 30;

const str = (v: unknown): string | null => (v === null || v === undefined || v === '' ? null : String(v));

export function formatDuration(ms: number | null | undefined): string | null {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return null;
  const s = Math.round(ms / 1000);
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (s < 60) return `${(ms / 1000).toFixed(s < 10 ? 1 : 0)} s`;
  const parts = [Math.floor(s / 3600) && `${Math.floor(s / 3600)} h`, Math.floor((s % 3600) / 60) && `${Math.floor((s % 3600) / 60)} min`, s % 60 && `${s % 60} s`];
  return parts.filter(Boolean).join(' ');
}

export function executionLink(publicUrl: string | null, executionId: string | null): string | null {
  return publicUrl && executionId ? `${publicUrl}/#/executions/${encodeURIComponent(executionId)}` : null;
}

/** The one-line subject of an event, also kept on its deliveries for lists. */
export function subjectOf(e: Pick<NotificationEvent, 'type' | 'details'>, projectName: string | null, kinds: readonly string[]): string {
  const d = e.details;
  const p = projectName ? `${projectName}: ` : '';
  const command = str(d.command) ?? 'a command';
  switch (e.type) {
    case 'execution.ended': {
      const status = String(d.status);
      if (kinds.includes('recovery')) return `${p}${command} recovered: it succeeded after failing`;
      if (status === 'succeeded') return `${p}${command} succeeded`;
      if (status === 'failed') return `${p}${command} failed${d.exit_code === null || d.exit_code === undefined ? '' : ` (exit code ${String(d.exit_code)})`}`;
      if (status === 'timed_out') return `${p}${command} timed out`;
      if (status === 'lost') return `${p}${command} was lost (its runner vanished)`;
      if (status === 'expired') return `${p}${command} expired: no runner started it`;
      return `${p}${command} ended ${status}`;
    }
    case 'execution.slow':
      return `${p}${command} has been running for over ${formatDuration(Number(d.threshold_seconds) * 1000)}`;
    case 'runner.offline':
      return `${p}runner ${str(d.hostname) ?? str(d.address) ?? ''} is offline`.replace('  ', ' ');
    case 'runner.online':
      return `${p}runner ${str(d.hostname) ?? str(d.address) ?? ''} is back online`.replace('  ', ' ');
    case 'schedule.missed':
    case 'schedule.skipped':
      return `${p}schedule ${str(d.schedule_name) ?? str(d.schedule_id) ?? ''} did not run ${command}${d.due_at ? ` due at ${String(d.due_at)}` : ''}`;
    case 'schedule.health':
      return `${p}schedule ${str(d.schedule_name) ?? str(d.schedule_id) ?? ''}: ${command} has not succeeded in time`;
    case 'approval.requested':
      return `${p}${command}${d.args ? ` ${String(d.args)}` : ''} waits for approval (asked by ${str(d.requested_by) ?? 'someone'})`;
    case 'shell.writable':
      return `${p}${str(d.user) ?? 'someone'} made a shell WRITABLE: ${str(d.reason) ?? ''}`;
    case TEST_EVENT:
      return `Test message from djangocommand${projectName ? ` for ${projectName}` : ''}`;
    default:
      return `${p}${e.type}${d.command ? ` (${command})` : ''}`;
  }
}

function toneOf(e: NotificationEvent, kinds: readonly string[]): Message['tone'] {
  if (kinds.includes('failure')) return 'bad';
  if (kinds.includes('success') || kinds.includes('recovery') || e.type === 'runner.online') return 'good';
  if (e.type === TEST_EVENT) return 'info';
  return 'warning';
}

const FIELD_LABELS: Array<[key: string, label: string, format?: (v: unknown) => string | null]> = [
  ['command', 'Command'],
  ['args', 'Arguments'],
  ['created_by', 'By'],
  ['schedule_name', 'Schedule'],
  ['status', 'Status'],
  ['exit_code', 'Exit code'],
  ['duration_ms', 'Duration', (v) => formatDuration(Number(v))],
  ['running_for_ms', 'Running for', (v) => formatDuration(Number(v))],
  ['due_at', 'Due at'],
  ['hostname', 'Host'],
  ['address', 'Address'],
  ['reason', 'Reason'],
  ['requested_by', 'Sent by'],
];

/** The message for one event; `publicUrl` makes the link. */
export async function eventMessage(core: Core, e: NotificationEvent, kinds: string[], publicUrl: string | null): Promise<Message> {
  const project = e.projectId ? await core.store.getProject(e.projectId) : undefined;
  const fields: Message['fields'] = project ? [['Project', project.name]] : [];
  const known = new Set(FIELD_LABELS.map(([k]) => k));
  for (const [key, label, format] of FIELD_LABELS) {
    const raw = e.details[key];
    const value = raw === null || raw === undefined || raw === '' ? null : format ? format(raw) : String(raw);
    if (value !== null) fields.push([label, value]);
  }
  if (e.scheduleId && e.details.schedule_name === undefined) fields.push(['Schedule', e.scheduleId]);
  // Facts other parts raise that this table does not know are shown as they are.
  for (const [key, raw] of Object.entries(e.details)) {
    if (known.has(key) || key === 'metadata_only' || key === 'schedule_id' || key === 'channel_name' || raw === null || typeof raw === 'object') continue;
    fields.push([key.replace(/_/g, ' '), String(raw)]);
  }
  let tail: string | null = null;
  if (e.type === 'execution.ended' && e.executionId && e.details.metadata_only !== true) {
    const execution = await core.store.getExecution(e.executionId);
    if (execution && !execution.metadataOnly && execution.outputLastSeq > 0) tail = (await outputTail(core, execution, TAIL_LINES, TAIL_CHARS)).trimEnd() || null;
  }
  return {
    subject: subjectOf(e, project?.name ?? null, kinds),
    tone: toneOf(e, kinds),
    fields,
    link: executionLink(publicUrl, e.executionId) ?? (typeof e.details.link === 'string' ? e.details.link : null),
    tail,
    items: [],
    event: e,
    kinds,
  };
}

/** One message for a storm's worth of notifications. */
export async function digestMessage(core: Core, digested: Delivery[], publicUrl: string | null): Promise<Message> {
  const events = new Map((await core.store.notifications.getEvents(digested.flatMap((d) => (d.eventId === null ? [] : [d.eventId])))).map((e) => [e.id, e]));
  const items = digested.slice(0, DIGEST_ITEMS).map((d) => {
    const e = d.eventId === null ? undefined : events.get(d.eventId);
    return { subject: d.summary, link: executionLink(publicUrl, e?.executionId ?? null), at: e?.at ?? d.createdAt };
  });
  const failures = digested.filter((d) => d.kinds.includes('failure')).length;
  const more = digested.length - items.length;
  return {
    subject: `${digested.length} notifications collapsed into one (more than 10 in a minute)${failures ? `: ${failures} failure${failures === 1 ? '' : 's'}` : ''}`,
    tone: failures ? 'bad' : 'warning',
    fields: more > 0 ? [['Not listed', `${more} more`]] : [],
    link: null,
    tail: null,
    items,
    event: null,
    kinds: ['digest'],
  };
}

/** The message as plain text (emails, the webhook's `text`). */
export function plainText(m: Message): string {
  const lines = [m.subject, ''];
  for (const [label, value] of m.fields) lines.push(`${label}: ${value}`);
  if (m.link) lines.push('', m.link);
  for (const i of m.items) lines.push(`- ${new Date(i.at).toISOString()} ${i.subject}${i.link ? `  ${i.link}` : ''}`);
  if (m.tail) lines.push('', 'Last lines of output:', m.tail);
  return lines.join('\n').trimEnd() + '\n';
}
