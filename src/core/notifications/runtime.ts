/**
 * What notifications need beyond the store: the key that seals channel secrets, the SMTP server
 * for email channels, and the dashboard's public address for links. serve.ts puts it on the Core;
 * without it (an `admin` command on the database) channels cannot be created or delivered.
 */
import type { Core } from '../context.js';
import { UserError } from '../../shared/errors.js';
import { loadSecretKey, SecretBox } from './secretBox.js';

export interface NotificationRuntime {
  box: SecretBox;
  /** `https://dc.example.com`, without a trailing slash: links are `<publicUrl>/#/executions/<id>`. */
  publicUrl: string | null;
  /** smtp://user:pass@host:port (smtps:// for TLS) for email channels without their own; null: none. */
  smtpUrl: string | null;
  emailFrom: string;
  /** Every send gives up after this long (HTTP request, SMTP connection, greeting and each reply). */
  sendTimeoutMs: number;
  /** Wait before the first retry; it doubles with each failed attempt, at most 1 h. */
  retryBaseMs: number;
}

declare module '../context.js' {
  interface Core {
    /** Set by the server (serve.ts); absent in `admin` commands. */
    notifications?: NotificationRuntime;
  }
}

export interface NotificationConfig {
  secretKey: string | undefined;
  smtpUrl: string | undefined;
  emailFrom: string;
  publicUrl: string | undefined;
  retryBaseMs: number;
}

/** `publicUrl` is null when not configured: the server sets its own address once it listens. */
export function notificationRuntime(config: NotificationConfig, dataDir: string): NotificationRuntime {
  if (config.smtpUrl !== undefined) smtpHost(config.smtpUrl, 'DJANGOCOMMAND_SMTP_URL');
  return {
    box: new SecretBox(loadSecretKey(config.secretKey, dataDir)),
    publicUrl: config.publicUrl?.replace(/\/+$/, '') ?? null,
    smtpUrl: config.smtpUrl ?? null,
    emailFrom: config.emailFrom,
    sendTimeoutMs: 10_000,
    retryBaseMs: config.retryBaseMs,
  };
}

export function runtimeOf(core: Core): NotificationRuntime {
  if (!core.notifications) throw new UserError('DC_CONFIG', 'Notifications are handled by the running server; use the REST API or the CLI against it.');
  return core.notifications;
}

/** `host:port` of an smtp:// or smtps:// URL (never its password); a wrong URL is refused naming `where`. */
export function smtpHost(url: string, where: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError('DC_VALIDATION', `${where} is not a URL: give smtp://user:password@host:port (or smtps:// for TLS).`, { field: where });
  }
  if (u.protocol !== 'smtp:' && u.protocol !== 'smtps:') {
    throw new UserError('DC_VALIDATION', `${where} must start with smtp:// or smtps://, e.g. smtp://user:password@mail.example.com:587.`, { field: where });
  }
  if (!u.hostname) throw new UserError('DC_VALIDATION', `${where} names no host: give smtp://user:password@host:port.`, { field: where });
  return u.port ? `${u.hostname}:${u.port}` : u.hostname;
}
