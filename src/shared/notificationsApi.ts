/**
 * Notifications on the wire: channels, their deliveries and attempts (`/api/v1/channels`), and
 * the JSON body a generic webhook channel receives. Times are ISO 8601 in UTC.
 *
 * Glossary:
 * - channel: where messages go (Slack incoming webhook, generic webhook, email), for one
 *   project or server-wide; it hears the event kinds it subscribes to (`on`).
 * - event: something raised by the server (an execution ended, a runner went offline...),
 *   written to the outbox before anything is sent.
 * - delivery: one message to one channel; retried with backoff for a day. A digest is one
 *   delivery carrying many (storm control).
 * - attempt: one try at sending a delivery, with its HTTP status or error.
 */
import { Type, type Static } from '@sinclair/typebox';
import { Nullable } from './wireSchemas.js';

const Time = Type.String({ format: 'date-time' });

export const ChannelKindSchema = Type.Union([Type.Literal('slack'), Type.Literal('webhook'), Type.Literal('email')]);

export const ChannelView = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  kind: ChannelKindSchema,
  project: Nullable(Type.String({ description: 'The project it hears; null: server-wide (every project).' })),
  target: Type.String({ description: 'Where messages go, redacted: scheme and host of a URL, or the recipients. Secrets are never shown again.' }),
  on: Type.Array(Type.String(), { description: 'Event kinds it hears: failure, success, recovery, slow, runner, missed, health, shell, approval...' }),
  commands: Nullable(Type.String({ description: 'Only events of commands matching these comma-separated globs.' })),
  slow_after: Nullable(Type.Integer({ description: 'Seconds: an execution running longer is reported (kind slow).' })),
  signed: Type.Boolean({ description: 'Webhook bodies carry X-DjangoCommand-Signature.' }),
  created_at: Time,
  created_by: Type.String(),
  last_delivery: Nullable(
    Type.Object({ status: Type.String(), at: Time, error: Nullable(Type.String()) }, { description: 'The newest delivery: pending, sending, delivered, failed, held, digested.' }),
  ),
});
export type ChannelView = Static<typeof ChannelView>;

export const CreateChannelRequest = Type.Object(
  {
    project: Nullable(Type.String({ maxLength: 200, description: 'Project name or id; null for a server-wide channel.' })),
    kind: ChannelKindSchema,
    name: Type.Optional(Type.String({ maxLength: 100 })),
    url: Type.Optional(Type.String({ maxLength: 2000, description: 'slack/webhook: the URL to POST to. email: an smtp:// URL of its own (default: the server\u2019s DJANGOCOMMAND_SMTP_URL).' })),
    to: Type.Optional(Type.Array(Type.String({ maxLength: 320 }), { maxItems: 50, description: 'email: recipients.' })),
    secret: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'webhook: the signing secret; generated (and returned once) when left out.' })),
    on: Type.Optional(Type.Array(Type.String({ maxLength: 40 }), { maxItems: 20, description: 'Default: failure, recovery, runner, missed, health, shell, approval.' })),
    commands: Type.Optional(Nullable(Type.String({ maxLength: 1000 }))),
    slow_after: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 604_800 }))),
  },
  { additionalProperties: false },
);
export type CreateChannelRequest = Static<typeof CreateChannelRequest>;

export const CreatedChannelView = Type.Composite([
  ChannelView,
  Type.Object({ secret: Nullable(Type.String({ description: 'webhook: the signing secret, shown this once.' })) }),
]);
export type CreatedChannelView = Static<typeof CreatedChannelView>;

export const AttemptView = Type.Object({
  at: Time,
  ok: Type.Boolean(),
  status_code: Nullable(Type.Integer({ description: 'The HTTP status the receiver answered (null for email, or when no answer came).' })),
  error: Nullable(Type.String()),
  duration_ms: Type.Integer(),
});
export type AttemptView = Static<typeof AttemptView>;

export const DeliveryView = Type.Object({
  id: Type.Integer(),
  event_id: Nullable(Type.Integer()),
  event_type: Nullable(Type.String({ description: 'null for a digest.' })),
  execution_id: Nullable(Type.String()),
  kinds: Type.Array(Type.String()),
  summary: Type.String(),
  status: Type.String({ description: 'pending, sending, delivered, failed (gave up after a day), held (for a digest), digested, cancelled.' }),
  attempts: Type.Array(AttemptView),
  created_at: Time,
  next_attempt_at: Nullable(Time),
  finished_at: Nullable(Time),
  digest_id: Nullable(Type.Integer()),
});
export type DeliveryView = Static<typeof DeliveryView>;

export const TestChannelView = Type.Object({ event_id: Type.Integer(), delivery: Nullable(DeliveryView) });
export type TestChannelView = Static<typeof TestChannelView>;

/** The body a generic webhook channel receives (signed: see README "Notifications"). */
export const WebhookPayload = Type.Object({
  delivery_id: Type.Integer({ description: 'Same on every retry of one delivery: receivers can drop duplicates by it.' }),
  type: Type.String({ description: 'execution.ended, execution.slow, runner.offline, schedule.missed, channel.test, digest...' }),
  kinds: Type.Array(Type.String()),
  at: Time,
  project: Nullable(Type.String()),
  subject: Type.String(),
  text: Type.String({ description: 'The whole message as plain text.' }),
  url: Nullable(Type.String({ description: 'The execution in the dashboard.' })),
  execution_id: Nullable(Type.String()),
  schedule_id: Nullable(Type.String()),
  details: Type.Record(Type.String(), Type.Unknown(), { description: 'The event\u2019s facts: command, args, status, exit_code, duration_ms, created_by, reason...' }),
  output_tail: Nullable(Type.String()),
  items: Type.Array(Type.Object({ subject: Type.String(), url: Nullable(Type.String()), at: Time }), { description: 'A digest\u2019s notifications.' }),
});
export type WebhookPayload = Static<typeof WebhookPayload>;

export const SIGNATURE_HEADER = 'X-DjangoCommand-Signature';
