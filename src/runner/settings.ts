/**
 * The runner's configuration, resolved once: command-line flag, then environment variable, then
 * the Django settings (read by bootstrap.py), then the default. Names, defaults and checks are
 * the Python runner's; a wrong value stops start-up with one line naming the setting and the fix.
 */
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { UserError } from '../shared/errors.js';
import { DEFAULT_ALLOWED_COMMANDS, DEFAULT_DISALLOWED_COMMANDS, type Policy } from './policy.js';
import { redactionRules, type RedactionRules, type Secret } from './redactor.js';

export interface DjangoSettingsReport {
  settings: Record<string, unknown>;
  types: Record<string, string>;
  base_dir: string;
  python_version: string;
  django_version: string;
  settings_module: string;
  /** Values of settings that look secret (bootstrap.py), scrubbed from output. Never logged. */
  secrets?: Secret[];
  /** DJANGOCOMMAND_REDACT_PATTERNS from the Django settings, as JSON. */
  redact_patterns?: unknown;
}

export interface RunnerSettings {
  apiKey: string;
  serverUrl: string;
  heartbeatIntervalSeconds: number;
  requestTimeoutSeconds: number;
  maxRetries: number;
  allowHttpHosts: string[];
  policy: Policy;
  maxConcurrency: number;
  warmStart: boolean;
  coldCommands: string[];
  /** DJANGOCOMMAND_READONLY_COMMANDS: run in read-only database mode by default (reported to the server). */
  readOnlyCommands?: string[];
  killGraceMs: number;
  /** Unacknowledged output kept on disk before commands are paused (back-pressure), bytes. */
  spoolMaxBytes: number;
  stateDir: string;
  baseDir: string;
  pythonVersion: string;
  djangoVersion: string;
  /** What is scrubbed from command output before it leaves the host (redactor.ts). */
  redaction: RedactionRules;
}

export interface RunnerFlags {
  serverUrl?: string;
  maxConcurrency?: string;
  warm?: boolean;
  stateDir?: string;
}

const DEFAULT_HTTP_HOSTS = ['localhost', '127.0.0.1', '::1'];

/** The Python runner's state folder: <tmp>/djangocommand-<12 hex of sha256(BASE_DIR)>/. */
export function stateDirFor(baseDir: string): string {
  return path.join(os.tmpdir(), `djangocommand-${createHash('sha256').update(baseDir).digest('hex').slice(0, 12)}`);
}

export function resolveRunnerSettings(flags: RunnerFlags, env: NodeJS.ProcessEnv, django: DjangoSettingsReport): RunnerSettings {
  const from = (name: string): { value: unknown; type: string; where: string } | undefined => {
    const e = env[name];
    if (e !== undefined && e !== '') return { value: e, type: 'env', where: `environment variable ${name}` };
    if (django.settings[name] !== null && django.settings[name] !== undefined) return { value: django.settings[name], type: django.types[name] ?? typeof django.settings[name], where: `Django setting ${name}` };
    return undefined;
  };

  const apiKey = String(from('DJANGOCOMMAND_API_KEY')?.value ?? '');
  if (!apiKey) throw configError('DJANGOCOMMAND_API_KEY is not set: add the key `djangocommand admin create-project` printed to the Django settings.');
  if (!apiKey.startsWith('dc_')) throw configError(`DJANGOCOMMAND_API_KEY must start with "dc_" (it starts with "${apiKey.slice(0, 3)}"); copy the whole runner API key.`);

  const allowHttpHosts = list(from('DJANGOCOMMAND_ALLOW_HTTP_HOSTS'), 'DJANGOCOMMAND_ALLOW_HTTP_HOSTS') ?? DEFAULT_HTTP_HOSTS;
  const serverUrl = flags.serverUrl ?? String(from('DJANGOCOMMAND_SERVER_URL')?.value ?? '');
  if (!serverUrl) throw configError('DJANGOCOMMAND_SERVER_URL is not set: set it to the server address, e.g. "https://djangocommand.example.com".');
  let url: URL;
  try {
    url = new URL(serverUrl);
  } catch {
    throw configError(`DJANGOCOMMAND_SERVER_URL "${serverUrl}" is not a URL; use e.g. "https://djangocommand.example.com".`);
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol === 'http:' && !allowHttpHosts.includes(host)) {
    throw configError(`DJANGOCOMMAND_SERVER_URL uses plain http to "${host}": use https, or add '${host}' to DJANGOCOMMAND_ALLOW_HTTP_HOSTS.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw configError(`DJANGOCOMMAND_SERVER_URL must start with https:// (got "${url.protocol}").`);

  const heartbeat = number(from('DJANGOCOMMAND_HEARTBEAT_INTERVAL'), 'DJANGOCOMMAND_HEARTBEAT_INTERVAL', 30);
  if (heartbeat < 5) throw configError(`DJANGOCOMMAND_HEARTBEAT_INTERVAL is ${heartbeat}; the minimum is 5 seconds.`);
  const useBlocklist = bool(from('DJANGOCOMMAND_USE_BLOCKLIST'), 'DJANGOCOMMAND_USE_BLOCKLIST', false);
  const maxConcurrency = flags.maxConcurrency !== undefined ? Number(flags.maxConcurrency) : number(from('DJANGOCOMMAND_MAX_CONCURRENCY'), 'DJANGOCOMMAND_MAX_CONCURRENCY', 4);
  if (!Number.isInteger(maxConcurrency) || maxConcurrency < 1 || maxConcurrency > 100) {
    throw configError(`--max-concurrency / DJANGOCOMMAND_MAX_CONCURRENCY is ${JSON.stringify(flags.maxConcurrency ?? from('DJANGOCOMMAND_MAX_CONCURRENCY')?.value)}; it must be a whole number from 1 to 100.`);
  }
  const warmEnv = env.DJANGOCOMMAND_WARM_START;
  const killGrace = number(from('DJANGOCOMMAND_KILL_GRACE'), 'DJANGOCOMMAND_KILL_GRACE', 5);
  if (killGrace < 0 || killGrace > 3600) throw configError(`DJANGOCOMMAND_KILL_GRACE is ${killGrace}; it must be from 0 to 3600 seconds.`);
  const spoolMaxMb = number(from('DJANGOCOMMAND_SPOOL_MAX_MB'), 'DJANGOCOMMAND_SPOOL_MAX_MB', 1024);
  if (!Number.isInteger(spoolMaxMb) || spoolMaxMb < 16) {
    throw configError(`DJANGOCOMMAND_SPOOL_MAX_MB is ${spoolMaxMb}; it must be a whole number of MiB, at least 16.`);
  }
  return {
    apiKey,
    serverUrl: serverUrl.replace(/\/+$/, ''),
    heartbeatIntervalSeconds: heartbeat,
    requestTimeoutSeconds: number(from('DJANGOCOMMAND_REQUEST_TIMEOUT'), 'DJANGOCOMMAND_REQUEST_TIMEOUT', 30),
    maxRetries: number(from('DJANGOCOMMAND_MAX_RETRIES'), 'DJANGOCOMMAND_MAX_RETRIES', 3),
    allowHttpHosts,
    policy: {
      useBlocklist,
      allowed: list(from('DJANGOCOMMAND_ALLOWED_COMMANDS'), 'DJANGOCOMMAND_ALLOWED_COMMANDS') ?? DEFAULT_ALLOWED_COMMANDS,
      disallowed: list(from('DJANGOCOMMAND_DISALLOWED_COMMANDS'), 'DJANGOCOMMAND_DISALLOWED_COMMANDS') ?? DEFAULT_DISALLOWED_COMMANDS,
      metadataOnly: list(from('DJANGOCOMMAND_METADATAONLY_COMMANDS'), 'DJANGOCOMMAND_METADATAONLY_COMMANDS') ?? [],
    },
    maxConcurrency,
    warmStart: flags.warm ?? (warmEnv === undefined ? bool(from('DJANGOCOMMAND_WARM_START'), 'DJANGOCOMMAND_WARM_START', true) : !['0', 'false', 'no'].includes(warmEnv.toLowerCase())),
    coldCommands: list(from('DJANGOCOMMAND_COLD_COMMANDS'), 'DJANGOCOMMAND_COLD_COMMANDS') ?? [],
    readOnlyCommands: list(from('DJANGOCOMMAND_READONLY_COMMANDS'), 'DJANGOCOMMAND_READONLY_COMMANDS') ?? [],
    killGraceMs: killGrace * 1000,
    spoolMaxBytes: spoolMaxMb * 1024 * 1024,
    stateDir: flags.stateDir ?? stateDirFor(django.base_dir),
    baseDir: django.base_dir,
    pythonVersion: django.python_version,
    djangoVersion: django.django_version,
    redaction: redactionRules(django.secrets ?? [], redactPatterns(env.DJANGOCOMMAND_REDACT_PATTERNS, django.redact_patterns)),
  };
}

/**
 * DJANGOCOMMAND_REDACT_PATTERNS: in the environment, a JSON list of strings or one pattern per
 * line (a comma can be part of a pattern); in the Django settings, a tuple or list of strings.
 */
function redactPatterns(fromEnv: string | undefined, fromDjango: unknown): string[] {
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    const text = fromEnv.trim();
    if (text.startsWith('[')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw configError('DJANGOCOMMAND_REDACT_PATTERNS starts with "[" but is not a JSON list of strings; write one pattern per line, or a JSON list.');
      }
      if (!Array.isArray(parsed) || parsed.some((p) => typeof p !== 'string')) throw configError('DJANGOCOMMAND_REDACT_PATTERNS must be a JSON list of strings.');
      return parsed as string[];
    }
    return text.split('\n').map((l) => l.trim()).filter(Boolean);
  }
  if (fromDjango === null || fromDjango === undefined) return [];
  if (typeof fromDjango === 'string') throw configError(`DJANGOCOMMAND_REDACT_PATTERNS is a string; it must be a tuple, e.g. (r"sk_live_[A-Za-z0-9]+",) — note the trailing comma.`);
  if (!Array.isArray(fromDjango) || fromDjango.some((p) => typeof p !== 'string')) throw configError('DJANGOCOMMAND_REDACT_PATTERNS must be a tuple of regular expressions (strings).');
  return fromDjango as string[];
}

function configError(message: string): UserError {
  return new UserError('DC_CONFIG', message, undefined, { exitCode: 2 });
}

/** Tuples and lists of strings; a bare string is the classic mistake `("migrate")` and is refused. */
function list(found: { value: unknown; type: string; where: string } | undefined, name: string): string[] | undefined {
  if (!found) return undefined;
  if (found.type === 'env') return String(found.value).split(',').map((s) => s.trim()).filter(Boolean);
  if (typeof found.value === 'string') {
    throw configError(`${name} is a string ("${found.value}"); it must be a tuple, e.g. ("${found.value}",) — note the trailing comma.`);
  }
  if (!Array.isArray(found.value) || found.value.some((v) => typeof v !== 'string')) {
    throw configError(`${name} must be a tuple of command names (it is a ${found.type}).`);
  }
  return found.value as string[];
}

function number(found: { value: unknown; type: string } | undefined, name: string, fallback: number): number {
  if (!found) return fallback;
  const n = Number(found.value);
  if (!Number.isFinite(n) || typeof found.value === 'boolean') throw configError(`${name} must be a number (it is ${JSON.stringify(found.value)}).`);
  return n;
}

function bool(found: { value: unknown; type: string } | undefined, name: string, fallback: boolean): boolean {
  if (!found) return fallback;
  if (typeof found.value === 'boolean') return found.value;
  const s = String(found.value).toLowerCase();
  if (['1', 'true', 'yes'].includes(s)) return true;
  if (['0', 'false', 'no'].includes(s)) return false;
  throw configError(`${name} must be True or False (it is ${JSON.stringify(found.value)}).`);
}
