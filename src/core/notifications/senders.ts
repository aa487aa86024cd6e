/**
 * Sending one message to one channel: Slack (and Mattermost / Discord's Slack-compatible
 * endpoints), a generic signed webhook, or email over SMTP. Every send has a timeout and
 * reports what happened; it never throws, and an error never carries the channel's secrets.
 */
import { createHmac } from 'node:crypto';
import nodemailer from 'nodemailer';
import type { Channel } from '../../store/notificationStore.js';
import { SIGNATURE_HEADER, type WebhookPayload } from '../../shared/notificationsApi.js';
import { VERSION } from '../../version.js';
import type { ChannelSecrets } from './channels.js';
import { plainText, type Message } from './message.js';
import type { NotificationRuntime } from './runtime.js';

export interface SendResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
}

const COLORS: Record<Message['tone'], string> = { bad: '#d93f3f', good: '#2e9d5b', warning: '#d9a13f', info: '#3f7fd9' };

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signature(secret: string, body: string, unixSeconds: number): string {
  return `t=${unixSeconds},v1=${createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex')}`;
}

export function webhookPayload(m: Message, deliveryId: number, projectName: string | null, at: number): WebhookPayload {
  const e = m.event;
  return {
    delivery_id: deliveryId,
    type: e?.type ?? 'digest',
    kinds: m.kinds,
    at: new Date(e?.at ?? at).toISOString(),
    project: projectName,
    subject: m.subject,
    text: plainText(m),
    url: m.link,
    execution_id: e?.executionId ?? null,
    schedule_id: e?.scheduleId ?? null,
    details: e?.details ?? {},
    output_tail: m.tail,
    items: m.items.map((i) => ({ subject: i.subject, url: i.link, at: new Date(i.at).toISOString() })),
  };
}

/** Slack's "mrkdwn" treats &, < and > as markup. */
const slackText = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function slackPayload(m: Message): Record<string, unknown> {
  const lines = m.items.map((i) => `• ${i.link ? `<${i.link}|${slackText(i.subject)}>` : slackText(i.subject)}`);
  const tail = m.tail ? '```' + slackText(m.tail).replace(/```/g, "'''") + '```' : '';
  return {
    text: m.link ? `<${m.link}|${slackText(m.subject)}>` : slackText(m.subject),
    attachments: [
      {
        color: COLORS[m.tone],
        fallback: slackText(m.subject),
        title: slackText(m.subject),
        ...(m.link ? { title_link: m.link } : {}),
        fields: m.fields.map(([title, value]) => ({ title, value: slackText(value), short: value.length <= 40 })),
        text: [...lines, tail].filter(Boolean).join('\n'),
        mrkdwn_in: ['text'],
        footer: 'djangocommand',
      },
    ],
  };
}

/** Removes every secret of the channel from a text about it (an error from a library, a receiver's answer). */
export function scrub(text: string, secrets: ChannelSecrets): string {
  let out = text;
  for (const s of [secrets.url, secrets.secret, secrets.smtp]) {
    if (!s) continue;
    out = out.split(s).join('[secret]');
    try {
      const u = new URL(s);
      if (u.password) out = out.split(decodeURIComponent(u.password)).join('[secret]').split(u.password).join('[secret]');
      if (u.pathname.length > 1) out = out.split(u.pathname).join('/[secret]');
    } catch {
      // not a URL: the whole value was removed above
    }
  }
  return out.slice(0, 500);
}

export async function send(channel: Channel, secrets: ChannelSecrets, m: Message, deliveryId: number, projectName: string | null, rt: NotificationRuntime): Promise<SendResult> {
  try {
    const result = await sendUnsafe(channel, secrets, m, deliveryId, projectName, rt);
    return { ...result, error: result.error && scrub(result.error, secrets) };
  } catch (err) {
    const e = err as Error & { cause?: Error; code?: string };
    const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? `no answer within ${rt.sendTimeoutMs / 1000} s` : [e.message, e.cause?.message].filter(Boolean).join(': ');
    return { ok: false, statusCode: null, error: scrub(why || String(err), secrets) };
  }
}

async function sendUnsafe(channel: Channel, secrets: ChannelSecrets, m: Message, deliveryId: number, projectName: string | null, rt: NotificationRuntime): Promise<SendResult> {
  switch (channel.kind) {
    case 'slack':
      return post(secrets.url!, JSON.stringify(slackPayload(m)), {}, rt);
    case 'webhook': {
      const body = JSON.stringify(webhookPayload(m, deliveryId, projectName, Date.now()));
      return post(
        secrets.url!,
        body,
        {
          [SIGNATURE_HEADER]: signature(secrets.secret!, body, Math.floor(Date.now() / 1000)),
          'X-DjangoCommand-Event': m.event?.type ?? 'digest',
          'X-DjangoCommand-Delivery': String(deliveryId),
        },
        rt,
      );
    }
    case 'email':
      return email(channel, secrets, m, rt);
  }
}

async function post(url: string, body: string, headers: Record<string, string>, rt: NotificationRuntime): Promise<SendResult> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': `djangocommand/${VERSION}`, ...headers },
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(rt.sendTimeoutMs),
  });
  const answer = (await res.text().catch(() => '')).slice(0, 300).trim();
  if (res.status >= 200 && res.status < 300) return { ok: true, statusCode: res.status, error: null };
  const redirect = res.status >= 300 && res.status < 400 ? ' (a redirect: give the final URL)' : '';
  return { ok: false, statusCode: res.status, error: `HTTP ${res.status}${redirect}${answer ? `: ${answer}` : ''}` };
}

async function email(channel: Channel, secrets: ChannelSecrets, m: Message, rt: NotificationRuntime): Promise<SendResult> {
  const smtp = secrets.smtp ?? rt.smtpUrl;
  if (!smtp) return { ok: false, statusCode: null, error: 'no SMTP server: set DJANGOCOMMAND_SMTP_URL on the server' };
  const u = new URL(smtp);
  const transport = nodemailer.createTransport({
    host: u.hostname.replace(/^\[|\]$/g, ''),
    port: u.port ? Number(u.port) : u.protocol === 'smtps:' ? 465 : 587,
    secure: u.protocol === 'smtps:',
    auth: u.username ? { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) } : undefined,
    connectionTimeout: rt.sendTimeoutMs,
    greetingTimeout: rt.sendTimeoutMs,
    socketTimeout: rt.sendTimeoutMs,
  });
  try {
    await transport.sendMail({
      from: rt.emailFrom,
      to: channel.config.to,
      subject: m.subject,
      text: plainText(m),
      headers: { 'X-DjangoCommand-Event': m.event?.type ?? 'digest' },
    });
    return { ok: true, statusCode: null, error: null };
  } finally {
    transport.close();
  }
}
