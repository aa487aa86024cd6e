/**
 * Notification channels: create (secrets sealed, shown once), list, delete, send a test. Every
 * create, delete and test is audited with the redacted target, never a secret.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Actor } from '../../domain/model.js';
import type { Channel, ChannelKind } from '../../store/notificationStore.js';
import { UserError } from '../../shared/errors.js';
import type { Core } from '../context.js';
import { audit } from '../audit.js';
import { raise } from '../notify.js';
import { resolveProject } from '../projects.js';
import { parseCommandGlobs, parseKinds, TEST_EVENT } from './kinds.js';
import { runtimeOf, smtpHost } from './runtime.js';

export const CHANNEL_KINDS: readonly ChannelKind[] = ['slack', 'webhook', 'email'];
export const SIGNING_SECRET_PREFIX = 'whsec_';

export interface NewChannelInput {
  /** A project's name or id; null: server-wide (hears every project). */
  project: string | null;
  kind: string;
  name?: string;
  /** slack, webhook: where to POST; email: an smtp:// URL of its own (else the server's). */
  url?: string;
  /** email: recipients. */
  to?: string[] | string;
  /** webhook: the signing secret; generated when not given. */
  secret?: string;
  on?: string[] | string;
  commands?: string | null;
  slowAfterSeconds?: number | null;
}

/** What a channel's sealed secrets hold. */
export interface ChannelSecrets {
  url?: string;
  secret?: string;
  smtp?: string;
}

const LOCAL_HOSTS = ['localhost', '127.0.0.1', '[::1]'];
const EMAIL = /^[^\s@,;<>"]+@[^\s@,;<>"]+$/;

export async function createChannel(core: Core, actor: Actor, input: NewChannelInput): Promise<{ channel: Channel; signingSecret: string | null }> {
  const rt = runtimeOf(core);
  if (!(CHANNEL_KINDS as readonly string[]).includes(input.kind)) {
    throw new UserError('DC_VALIDATION', `kind "${input.kind}" is not a channel kind: use slack, webhook or email.`, { field: 'kind' });
  }
  const kind = input.kind as ChannelKind;
  const project = input.project === null ? null : await resolveProject(core, input.project);
  const on = parseKinds(input.on);
  const slow = input.slowAfterSeconds ?? null;
  if (slow !== null && (!Number.isInteger(slow) || slow < 1 || slow > 604_800)) {
    throw new UserError('DC_VALIDATION', 'slow_after must be a whole number of seconds from 1 to 604800 (7 days).', { field: 'slow_after' });
  }
  if (slow !== null && !on.includes('slow')) on.push('slow');
  if (slow === null && on.includes('slow')) {
    throw new UserError('DC_VALIDATION', 'The "slow" kind needs a threshold: give slow_after (--slow-after SECONDS).', { field: 'slow_after' });
  }
  const commands = parseCommandGlobs(input.commands);

  const secrets: ChannelSecrets = {};
  let target: string;
  let to: string[] = [];
  let signingSecret: string | null = null;
  if (kind === 'email') {
    to = (typeof input.to === 'string' ? input.to.split(',') : (input.to ?? [])).map((a) => a.trim()).filter(Boolean);
    if (to.length === 0) throw new UserError('DC_VALIDATION', 'An email channel needs recipients: give to (--to a@example.com,b@example.com).', { field: 'to' });
    const bad = to.find((a) => !EMAIL.test(a));
    if (bad) throw new UserError('DC_VALIDATION', `"${bad}" is not an email address.`, { field: 'to' });
    if (input.secret !== undefined) throw new UserError('DC_VALIDATION', 'An email channel takes no signing secret (only webhooks are signed).', { field: 'secret' });
    let via = '';
    if (input.url !== undefined) {
      via = ` via ${smtpHost(input.url, 'url')}`;
      secrets.smtp = input.url;
    } else if (!rt.smtpUrl) {
      throw new UserError('DC_VALIDATION', 'No SMTP server: set DJANGOCOMMAND_SMTP_URL on the server (smtp://user:password@host:port), or give this channel its own (--url smtp://...).', { field: 'url' });
    }
    target = to.join(', ') + via;
  } else {
    if (input.to !== undefined) throw new UserError('DC_VALIDATION', `A ${kind} channel posts to a URL; "to" is for email channels.`, { field: 'to' });
    if (!input.url) throw new UserError('DC_VALIDATION', `A ${kind} channel needs the URL to post to: give url (--url https://...).`, { field: 'url' });
    target = redactUrl(input.url);
    secrets.url = input.url;
    if (kind === 'webhook') {
      if (input.secret !== undefined && input.secret.length < 16) {
        throw new UserError('DC_VALIDATION', 'A signing secret must be at least 16 characters (leave it out to have one generated).', { field: 'secret' });
      }
      signingSecret = input.secret ?? SIGNING_SECRET_PREFIX + randomBytes(32).toString('base64url');
      secrets.secret = signingSecret;
    } else if (input.secret !== undefined) {
      throw new UserError('DC_VALIDATION', 'A Slack channel takes no signing secret (its URL is the secret).', { field: 'secret' });
    }
  }
  const name = (input.name ?? '').trim() || `${kind} to ${target}`;
  if (name.length > 100) throw new UserError('DC_VALIDATION', 'name must be at most 100 characters.', { field: 'name' });

  const id = randomUUID();
  const channel: Channel = {
    id,
    projectId: project?.id ?? null,
    name,
    kind,
    target,
    sealed: rt.box.seal(JSON.stringify(secrets), id),
    config: { on, commands, slowAfterSeconds: slow, to },
    createdAt: core.now(),
    createdBy: actor.label,
    deletedAt: null,
  };
  await core.store.notifications.createChannel(channel);
  await audit(core, actor, {
    action: 'channel.create',
    projectId: channel.projectId,
    details: { channel_id: id, name, kind, target, on, commands, slow_after: slow, signed: signingSecret !== null },
  });
  return { channel, signingSecret };
}

export async function getChannel(core: Core, id: string): Promise<Channel> {
  const c = /^[0-9a-f-]{36}$/i.test(id) ? await core.store.notifications.getChannel(id.toLowerCase()) : undefined;
  if (!c || c.deletedAt !== null) throw new UserError('DC_UNKNOWN_CHANNEL', `No notification channel "${id}" (see \`djangocommand channel list\`).`);
  return c;
}

export async function deleteChannel(core: Core, actor: Actor, id: string): Promise<Channel> {
  const c = await getChannel(core, id);
  if (!(await core.store.notifications.deleteChannel(c.id, core.now()))) throw new UserError('DC_UNKNOWN_CHANNEL', `No notification channel "${id}".`);
  await audit(core, actor, { action: 'channel.delete', projectId: c.projectId, details: { channel_id: c.id, name: c.name, kind: c.kind, target: c.target } });
  return c;
}

/** Queues a test message for the channel (through the outbox, like any other); its event id. */
export async function testChannel(core: Core, actor: Actor, id: string): Promise<{ channel: Channel; eventId: number }> {
  const c = await getChannel(core, id);
  const eventId = await raise(core, { type: TEST_EVENT, projectId: c.projectId, channelId: c.id, details: { requested_by: actor.label, channel_name: c.name } });
  await audit(core, actor, { action: 'channel.test', projectId: c.projectId, details: { channel_id: c.id, name: c.name, kind: c.kind, target: c.target, event_id: eventId } });
  return { channel: c, eventId: eventId! };
}

/** The channel's secrets in clear, for the deliverer only. */
export function openSecrets(core: Core, c: Channel): ChannelSecrets {
  return JSON.parse(runtimeOf(core).box.open(c.sealed, c.id)) as ChannelSecrets;
}

/** `https://hooks.slack.com/…`: scheme and host only; a URL's path and query carry its secret. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError('DC_VALIDATION', 'url is not a URL: give https://...', { field: 'url' });
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOCAL_HOSTS.includes(u.hostname))) {
    throw new UserError('DC_VALIDATION', 'url must be https:// (plain http only to localhost, 127.0.0.1 or ::1): it carries the channel\u2019s secret.', { field: 'url' });
  }
  return `${u.protocol}//${u.host}/…`;
}
