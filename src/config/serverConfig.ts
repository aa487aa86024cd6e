/**
 * Server configuration: every setting declared once with its flag, environment variable,
 * default and doc. resolveServerConfig() applies: CLI flag, then environment, then default,
 * and names the setting and the fix when a value is wrong.
 */
import path from 'node:path';
import { UserError } from '../shared/errors.js';
import type { CoreSettings } from '../core/context.js';
import type { NotificationConfig } from '../core/notifications/runtime.js';
import type { OidcSettings, SignInSettings } from '../core/oidc.js';
import { parseRoleMap } from '../domain/oidcRoleMap.js';

type Kind = 'string' | 'port' | 'seconds' | 'count' | 'whole' | 'bytes' | 'bool';

interface Setting {
  key: string;
  env: string;
  kind: Kind;
  default: string | undefined;
  doc: string;
}

export const SERVER_SETTINGS = [
  { key: 'dataDir', env: 'DJANGOCOMMAND_DATA_DIR', kind: 'string', default: 'djangocommand-data', doc: 'Folder for the SQLite database and the first admin password file.' },
  { key: 'databaseUrl', env: 'DATABASE_URL', kind: 'string', default: undefined, doc: 'postgres://user:pass@host/db to use PostgreSQL (several replicas may share it); default: SQLite in the data folder.' },
  { key: 'host', env: 'DJANGOCOMMAND_HOST', kind: 'string', default: '127.0.0.1', doc: 'Address to listen on (0.0.0.0 for all interfaces; put HTTPS in front).' },
  { key: 'port', env: 'DJANGOCOMMAND_PORT', kind: 'port', default: '8600', doc: 'TCP port to listen on.' },
  { key: 'adminEmail', env: 'DJANGOCOMMAND_ADMIN_EMAIL', kind: 'string', default: 'admin@localhost', doc: 'Email of the admin created on first start.' },
  { key: 'adminPassword', env: 'DJANGOCOMMAND_ADMIN_PASSWORD', kind: 'string', default: undefined, doc: 'Password of the first admin; default: generated and written to a 0600 file in the data folder.' },
  { key: 'defaultTimeout', env: 'DJANGOCOMMAND_DEFAULT_TIMEOUT', kind: 'seconds', default: '3600', doc: 'Timeout of an execution whose request names none.' },
  { key: 'defaultStartTimeout', env: 'DJANGOCOMMAND_START_TIMEOUT', kind: 'seconds', default: '600', doc: 'How long an execution may wait for a runner to start it (a run request may name its own, start_timeout); then it ends expired and never starts.' },
  { key: 'defaultConcurrency', env: 'DJANGOCOMMAND_DEFAULT_CONCURRENCY', kind: 'count', default: '1', doc: 'Active executions allowed per command and project, unless the command sets its own.' },
  { key: 'runnerOfflineAfter', env: 'DJANGOCOMMAND_RUNNER_OFFLINE_AFTER', kind: 'seconds', default: '90', doc: 'A runner not heard from for this long is offline (3 missed 30 s heartbeats).' },
  { key: 'lostGrace', env: 'DJANGOCOMMAND_LOST_GRACE', kind: 'seconds', default: '60', doc: 'After a runner goes offline, how long before what it was running becomes lost.' },
  { key: 'timeoutGrace', env: 'DJANGOCOMMAND_TIMEOUT_GRACE', kind: 'seconds', default: '60', doc: 'How long a runner may take to report a timed-out execution before the server marks it timed_out.' },
  { key: 'replayWindow', env: 'DJANGOCOMMAND_REPLAY_WINDOW', kind: 'seconds', default: '300', doc: 'Accepted clock difference for runner request timestamps.' },
  { key: 'maxRunnerBody', env: 'DJANGOCOMMAND_MAX_RUNNER_BODY', kind: 'bytes', default: String(32 * 1024 * 1024), doc: 'Largest runner request (an output chunk) in bytes.' },
  { key: 'maxApiBody', env: 'DJANGOCOMMAND_MAX_API_BODY', kind: 'bytes', default: String(1024 * 1024), doc: 'Largest REST API request in bytes.' },
  { key: 'maxOutputChunk', env: 'DJANGOCOMMAND_MAX_OUTPUT_CHUNK', kind: 'bytes', default: String(64 * 1024 ** 3), doc: 'Largest protocol v1 output chunk in bytes. Chunks stream into the database in parts (memory stays flat), so the default (64 GiB) takes what the Python runner sends: 1.5 s of output at once, however large.' },
  { key: 'receiveTimeout', env: 'DJANGOCOMMAND_RECEIVE_TIMEOUT', kind: 'seconds', default: '120', doc: 'Longest time to receive one request, headers and body; headers must come within 10 s. Slow clients are cut off.' },
  { key: 'maxConnectionsPerAddress', env: 'DJANGOCOMMAND_MAX_CONNECTIONS_PER_ADDRESS', kind: 'whole', default: '256', doc: 'Open connections one client address may hold (0: no cap). Behind a reverse proxy, cap at the proxy and raise this.' },
  { key: 'pgPreparedStatements', env: 'DJANGOCOMMAND_PG_PREPARED_STATEMENTS', kind: 'bool', default: 'true', doc: 'PostgreSQL: prepare the statements the server sends often, once per connection. Set false behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).' },
  { key: 'trustProxy', env: 'DJANGOCOMMAND_TRUST_PROXY', kind: 'bool', default: 'false', doc: 'Take client addresses from X-Forwarded-For (only behind a proxy you run).' },
  { key: 'sweepInterval', env: 'DJANGOCOMMAND_SWEEP_INTERVAL', kind: 'seconds', default: '1', doc: 'How often to look for lost and timed-out executions.' },
  { key: 'secretKey', env: 'DJANGOCOMMAND_SECRET_KEY', kind: 'string', default: undefined, doc: 'Key that encrypts notification channel secrets at rest: 32 bytes as 64 hex digits or base64 (openssl rand -base64 32). Default: generated once into <data dir>/secret.key (0600). Replicas sharing PostgreSQL must all have the same one.' },
  { key: 'smtpUrl', env: 'DJANGOCOMMAND_SMTP_URL', kind: 'string', default: undefined, doc: 'SMTP server for email channels: smtp://user:password@host:587 (smtps:// for TLS on connect).' },
  { key: 'emailFrom', env: 'DJANGOCOMMAND_EMAIL_FROM', kind: 'string', default: 'djangocommand@localhost', doc: 'Sender address of notification emails.' },
  { key: 'publicUrl', env: 'DJANGOCOMMAND_PUBLIC_URL', kind: 'string', default: undefined, doc: 'The dashboard address people open (https://dc.example.com), for links in notifications. Default: the address the server listens on.' },
  { key: 'notifyRetryBase', env: 'DJANGOCOMMAND_NOTIFY_RETRY_BASE', kind: 'seconds', default: '30', doc: 'Wait before retrying a failed notification; it doubles with each attempt (at most 1 h apart), for a day.' },
  { key: 'logLevel', env: 'DJANGOCOMMAND_LOG_LEVEL', kind: 'string', default: 'warn', doc: 'fatal, error, warn, info (every request), debug or silent.' },
  { key: 'metricsToken', env: 'DJANGOCOMMAND_METRICS_TOKEN', kind: 'string', default: undefined, doc: 'Serve Prometheus metrics at /metrics to requests with "Authorization: Bearer <this>" (at least 16 characters). Without it (and without a metrics address) /metrics is 404.' },
  { key: 'metricsAddress', env: 'DJANGOCOMMAND_METRICS_ADDRESS', kind: 'string', default: undefined, doc: 'host:port of a second listener serving only /metrics, /healthz and /readyz, with no token (e.g. 127.0.0.1:9600, reachable by Prometheus only).' },
  { key: 'shutdownGrace', env: 'DJANGOCOMMAND_SHUTDOWN_GRACE', kind: 'seconds', default: '25', doc: 'On SIGTERM/SIGINT, how long requests in flight may take to finish before their connections are closed.' },
  { key: 'shutdownDelay', env: 'DJANGOCOMMAND_SHUTDOWN_DELAY', kind: 'whole', default: '0', doc: 'On SIGTERM/SIGINT, how long to keep serving with /readyz answering 503 before the listener closes, so a load balancer takes the server out first.' },
  { key: 'retentionDays', env: 'DJANGOCOMMAND_RETENTION_DAYS', kind: 'whole', default: '0', doc: 'Finished executions (with their output) older than this many days are purged; 0 keeps them forever. A project may set its own (djangocommand retention set).' },
  { key: 'retentionMaxOutputBytes', env: 'DJANGOCOMMAND_RETENTION_MAX_OUTPUT_BYTES', kind: 'whole', default: '0', doc: "Most output bytes a project keeps; the oldest finished executions are purged beyond it. 0: no limit. A project may set its own." },
  { key: 'retentionInterval', env: 'DJANGOCOMMAND_RETENTION_INTERVAL', kind: 'seconds', default: '600', doc: 'How often the background purge runs.' },
  { key: 'oidcIssuer', env: 'DJANGOCOMMAND_OIDC_ISSUER', kind: 'string', default: undefined, doc: 'Single sign-on: the OpenID Connect issuer URL (https://login.example.com/realms/acme; http only on localhost). Sign-in redirects to it; people are created on their first sign-in. The provider must allow the redirect URI <public URL>/auth/oidc/callback.' },
  { key: 'oidcClientId', env: 'DJANGOCOMMAND_OIDC_CLIENT_ID', kind: 'string', default: undefined, doc: 'Single sign-on: the client id registered at the provider (required with an issuer).' },
  { key: 'oidcClientSecret', env: 'DJANGOCOMMAND_OIDC_CLIENT_SECRET', kind: 'string', default: undefined, doc: 'Single sign-on: the client secret; leave unset for a public client (PKCE protects the code either way).' },
  { key: 'oidcScopes', env: 'DJANGOCOMMAND_OIDC_SCOPES', kind: 'string', default: 'openid email profile', doc: 'Single sign-on: the scopes asked for, separated by spaces; must include openid.' },
  { key: 'oidcRolesClaim', env: 'DJANGOCOMMAND_OIDC_ROLES_CLAIM', kind: 'string', default: 'groups', doc: 'Single sign-on: the claim (ID token or userinfo) whose values the role map reads.' },
  { key: 'oidcRoleMap', env: 'DJANGOCOMMAND_OIDC_ROLE_MAP', kind: 'string', default: '', doc: 'Single sign-on: claim values to roles, VALUE=PROJECT:ROLE, VALUE=*:ROLE or VALUE=owner, comma-separated (dc-shop-admins=shop:admin,dc-ops=*:operator,dc-owners=owner). Each sign-in sets the roles in the projects the map names (all with *) and the owner flag (when mapped); others are left to project admins.' },
  { key: 'oidcName', env: 'DJANGOCOMMAND_OIDC_NAME', kind: 'string', default: 'single sign-on', doc: 'Single sign-on: the provider name on the sign-in button ("Sign in with <name>").' },
  { key: 'localPasswords', env: 'DJANGOCOMMAND_LOCAL_PASSWORDS', kind: 'string', default: 'on', doc: 'on or off: off refuses email and password sign-in (DC_LOCAL_PASSWORDS_OFF) and hides the form; `admin` commands on the server host still work.' },
] as const satisfies readonly Setting[];

export type ServerSettingKey = (typeof SERVER_SETTINGS)[number]['key'];

export interface ServerConfig {
  dataDir: string;
  databaseUrl: string | undefined;
  host: string;
  port: number;
  adminEmail: string;
  adminPassword: string | undefined;
  trustProxy: boolean;
  pgPreparedStatements: boolean;
  maxRunnerBodyBytes: number;
  maxApiBodyBytes: number;
  maxOutputChunkBytes: number;
  receiveTimeoutMs: number;
  maxConnectionsPerAddress: number;
  sweepIntervalMs: number;
  logLevel: string;
  /** Bearer token for /metrics on the main listener; undefined: not served there. */
  metricsToken: string | undefined;
  /** A second listener for /metrics (no token), health and readiness. */
  metricsAddress: { host: string; port: number } | undefined;
  shutdownGraceMs: number;
  shutdownDelayMs: number;
  retention: { days: number; maxOutputBytes: number; intervalMs: number };
  core: CoreSettings;
  notifications: NotificationConfig;
  /** Password sign-in on or off, and single sign-on (OpenID Connect) when an issuer is set. */
  signIn: SignInSettings;
}

export function resolveServerConfig(flags: Partial<Record<ServerSettingKey, string | undefined>>, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const raw = (s: (typeof SERVER_SETTINGS)[number]) => flags[s.key] ?? (env[s.env] === '' ? undefined : env[s.env]) ?? s.default;
  const get = (key: ServerSettingKey) => {
    const s = SERVER_SETTINGS.find((x) => x.key === key)!;
    return { s, value: raw(s) };
  };
  const str = (key: ServerSettingKey) => get(key).value;
  const num = (key: ServerSettingKey) => {
    const { s, value } = get(key);
    return parseNumber(s, value!);
  };
  const bool = (key: ServerSettingKey) => {
    const { s, value } = get(key);
    if (value === 'true' || value === '1') return true;
    if (value === 'false' || value === '0') return false;
    throw settingError(s, value!, 'true or false');
  };
  const logLevel = str('logLevel')!;
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw settingError(get('logLevel').s, logLevel, 'one of fatal, error, warn, info, debug, silent');
  }
  const metricsToken = str('metricsToken');
  if (metricsToken !== undefined && (metricsToken.length < 16 || !/^[\x21-\x7e]+$/.test(metricsToken))) {
    throw settingError(get('metricsToken').s, '…', 'at least 16 printable characters without spaces (openssl rand -hex 24)');
  }
  return {
    dataDir: path.resolve(str('dataDir')!),
    databaseUrl: str('databaseUrl'),
    host: str('host')!,
    port: num('port'),
    adminEmail: str('adminEmail')!,
    adminPassword: str('adminPassword'),
    trustProxy: bool('trustProxy'),
    pgPreparedStatements: bool('pgPreparedStatements'),
    maxRunnerBodyBytes: num('maxRunnerBody'),
    maxApiBodyBytes: num('maxApiBody'),
    maxOutputChunkBytes: num('maxOutputChunk'),
    receiveTimeoutMs: num('receiveTimeout') * 1000,
    maxConnectionsPerAddress: num('maxConnectionsPerAddress'),
    sweepIntervalMs: num('sweepInterval') * 1000,
    logLevel,
    metricsToken,
    metricsAddress: parseListenAddress(get('metricsAddress').s, str('metricsAddress')),
    shutdownGraceMs: num('shutdownGrace') * 1000,
    shutdownDelayMs: num('shutdownDelay') * 1000,
    retention: { days: num('retentionDays'), maxOutputBytes: num('retentionMaxOutputBytes'), intervalMs: num('retentionInterval') * 1000 },
    core: {
      defaultTimeoutSeconds: Math.round(num('defaultTimeout')),
      defaultStartTimeoutSeconds: Math.round(num('defaultStartTimeout')),
      defaultConcurrency: num('defaultConcurrency'),
      runnerOfflineAfterMs: num('runnerOfflineAfter') * 1000,
      lostGraceMs: num('lostGrace') * 1000,
      timeoutGraceMs: num('timeoutGrace') * 1000,
      replayWindowSeconds: num('replayWindow'),
    },
    notifications: { secretKey: str('secretKey'), smtpUrl: str('smtpUrl'), emailFrom: str('emailFrom')!, publicUrl: str('publicUrl'), retryBaseMs: num('notifyRetryBase') * 1000 },
    signIn: { localPasswords: onOff(get('localPasswords').s, str('localPasswords')!), oidc: oidcSettings(get, str('publicUrl')) },
  };
}

function onOff(s: Setting, value: string): boolean {
  if (['on', 'true', '1'].includes(value)) return true;
  if (['off', 'false', '0'].includes(value)) return false;
  throw settingError(s, value, 'on or off');
}

/** Single sign-on, when an issuer is set: every OIDC setting checked here, so a wrong one stops the start. */
function oidcSettings(get: (key: ServerSettingKey) => { s: Setting; value: string | undefined }, publicUrl: string | undefined): OidcSettings | undefined {
  const issuer = get('oidcIssuer');
  const clientId = get('oidcClientId');
  if (issuer.value === undefined) {
    for (const key of ['oidcClientId', 'oidcClientSecret', 'oidcRoleMap'] as const) {
      const { s, value } = get(key);
      if (value) throw settingError(s, key === 'oidcClientSecret' ? '…' : value, `unset, or DJANGOCOMMAND_OIDC_ISSUER set too (single sign-on is off without an issuer)`);
    }
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(issuer.value);
  } catch {
    throw settingError(issuer.s, issuer.value, 'an absolute URL such as https://login.example.com/realms/acme');
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname);
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback)) {
    throw settingError(issuer.s, issuer.value, 'an https:// URL (http:// only for localhost, 127.0.0.1 or ::1)');
  }
  if (url.search || url.hash) throw settingError(issuer.s, issuer.value, 'the issuer URL without ?query or #fragment');
  if (!clientId.value) throw settingError(clientId.s, '', 'the client id registered at the provider (single sign-on is on: DJANGOCOMMAND_OIDC_ISSUER is set)');
  const scopes = get('oidcScopes');
  const scopeList = scopes.value!.split(/\s+/).filter(Boolean);
  if (!scopeList.includes('openid') || scopeList.some((x) => !/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(x))) {
    throw settingError(scopes.s, scopes.value!, 'scopes separated by spaces, including openid (e.g. "openid email profile groups")');
  }
  const claim = get('oidcRolesClaim');
  if (!claim.value || /\s/.test(claim.value)) throw settingError(claim.s, claim.value ?? '', 'the name of a claim, such as groups or roles');
  const mapSetting = get('oidcRoleMap');
  let roleMap;
  try {
    roleMap = parseRoleMap(mapSetting.value ?? '');
  } catch (err) {
    throw settingError(mapSetting.s, mapSetting.value!, `a list of VALUE=PROJECT:ROLE, VALUE=*:ROLE or VALUE=owner separated by commas (${(err as Error).message})`);
  }
  const name = get('oidcName');
  if (!name.value || name.value.length > 60 || /[\u0000-\u001f\u007f]/.test(name.value)) throw settingError(name.s, name.value ?? '', 'a short name for the button (at most 60 characters)');
  if (publicUrl !== undefined && !/^https?:\/\/[^/?#]+(\/[^?#]*)?$/.test(publicUrl)) {
    throw settingError(SERVER_SETTINGS.find((x) => x.key === 'publicUrl')!, publicUrl, 'the dashboard address, such as https://dc.example.com (it makes the sign-on redirect URI)');
  }
  return {
    issuer: issuer.value,
    clientId: clientId.value,
    clientSecret: get('oidcClientSecret').value,
    scopes: scopeList.join(' '),
    rolesClaim: claim.value,
    roleMap,
    name: name.value,
    publicUrl: publicUrl?.replace(/\/+$/, ''),
  };
}

function parseNumber(s: Setting, value: string): number {
  const n = Number(value);
  switch (s.kind) {
    case 'port':
      if (Number.isInteger(n) && n >= 0 && n <= 65535) return n;
      throw settingError(s, value, 'a port number from 0 to 65535');
    case 'seconds':
      if (Number.isFinite(n) && n > 0) return n;
      throw settingError(s, value, 'a positive number of seconds');
    case 'count':
      if (Number.isInteger(n) && n >= 1) return n;
      throw settingError(s, value, 'a whole number of at least 1');
    case 'whole':
      if (Number.isInteger(n) && n >= 0) return n;
      throw settingError(s, value, 'a whole number (0 or more)');
    case 'bytes':
      if (Number.isInteger(n) && n >= 1024) return n;
      throw settingError(s, value, 'a whole number of bytes, at least 1024');
    default:
      throw settingError(s, value, 'a number');
  }
}

/** "host:port" ("[::1]:9600" for IPv6) of an extra listener; undefined when not set. */
function parseListenAddress(s: Setting, value: string | undefined): { host: string; port: number } | undefined {
  if (value === undefined) return undefined;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw settingError(s, value, 'host:port, e.g. 127.0.0.1:9600 or [::1]:9600');
  return { host: m[1] ?? m[2], port };
}

function settingError(s: Setting, value: string, want: string): UserError {
  const flag = '--' + s.key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
  return new UserError('DC_CONFIG', `${s.env} / ${flag} is "${value}"; it must be ${want}.`, undefined, { exitCode: 2 });
}

/** The flag name of a setting, for the CLI. */
export function flagOf(key: ServerSettingKey): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
