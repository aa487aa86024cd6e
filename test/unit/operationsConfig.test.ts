/** Operations settings, request ids and the metrics token check. */
import { describe, expect, it } from 'vitest';
import type { IncomingMessage } from 'node:http';
import { resolveServerConfig } from '../../src/config/serverConfig.js';
import { isUserError } from '../../src/shared/errors.js';
import { pathOf, requestIdOf } from '../../src/server/requestLog.js';
import { bearerMatches } from '../../src/server/metrics.js';

const configError = (env: Record<string, string>) => {
  try {
    resolveServerConfig({}, env);
  } catch (err) {
    if (isUserError(err)) return `${err.code}: ${err.message}`;
    throw err;
  }
  return undefined;
};

describe('operations settings', () => {
  it('defaults: no metrics, 25 s grace, no delay, retention off', () => {
    const c = resolveServerConfig({}, {});
    expect(c.metricsToken).toBeUndefined();
    expect(c.metricsAddress).toBeUndefined();
    expect(c.shutdownGraceMs).toBe(25_000);
    expect(c.shutdownDelayMs).toBe(0);
    expect(c.retention).toEqual({ days: 0, maxOutputBytes: 0, intervalMs: 600_000 });
  });

  it('reads the metrics address, IPv6 too', () => {
    expect(resolveServerConfig({}, { DJANGOCOMMAND_METRICS_ADDRESS: '127.0.0.1:9600' }).metricsAddress).toEqual({ host: '127.0.0.1', port: 9600 });
    expect(resolveServerConfig({}, { DJANGOCOMMAND_METRICS_ADDRESS: '[::1]:9600' }).metricsAddress).toEqual({ host: '::1', port: 9600 });
  });

  it('names the setting and the fix for a wrong value, never echoing the metrics token', () => {
    expect(configError({ DJANGOCOMMAND_METRICS_ADDRESS: '9600' })).toMatch(/^DC_CONFIG: DJANGOCOMMAND_METRICS_ADDRESS .*host:port/);
    expect(configError({ DJANGOCOMMAND_METRICS_ADDRESS: 'localhost:99999' })).toMatch(/DC_CONFIG/);
    const short = configError({ DJANGOCOMMAND_METRICS_TOKEN: 'short-secret' });
    expect(short).toMatch(/^DC_CONFIG: DJANGOCOMMAND_METRICS_TOKEN .*at least 16/);
    expect(short).not.toContain('short-secret');
    expect(configError({ DJANGOCOMMAND_RETENTION_DAYS: '-1' })).toMatch(/DJANGOCOMMAND_RETENTION_DAYS .*whole number/);
    expect(configError({ DJANGOCOMMAND_RETENTION_DAYS: '1.5' })).toMatch(/DC_CONFIG/);
    expect(configError({ DJANGOCOMMAND_SHUTDOWN_GRACE: '0' })).toMatch(/DJANGOCOMMAND_SHUTDOWN_GRACE .*positive/);
  });
});

describe('request ids', () => {
  const req = (id?: string | string[]) => ({ headers: id === undefined ? {} : { 'x-request-id': id } }) as unknown as IncomingMessage;

  it("takes a well-formed X-Request-Id and makes one otherwise", () => {
    expect(requestIdOf(req('abc-123_x.y:z'))).toBe('abc-123_x.y:z');
    expect(requestIdOf(req(['first', 'second']))).toBe('first');
    for (const bad of [undefined, '', 'with space', 'a'.repeat(129), '-leading', 'ünïcode', 'line\nbreak']) {
      expect(requestIdOf(req(bad))).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
    }
  });

  it('logs paths without their query string', () => {
    expect(pathOf('/api/v1/x?token=secret')).toBe('/api/v1/x');
    expect(pathOf('/a#frag?x')).toBe('/a');
    expect(pathOf(undefined)).toBe('/');
  });
});

describe('metrics token', () => {
  it('matches only "Bearer <token>" exactly', () => {
    const token = 'a-very-long-metrics-token';
    expect(bearerMatches(`Bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`bearer ${token}`, token)).toBe(true);
    expect(bearerMatches(`Bearer ${token}x`, token)).toBe(false);
    expect(bearerMatches(`Bearer ${token.slice(0, -1)}`, token)).toBe(false);
    expect(bearerMatches(token, token)).toBe(false);
    expect(bearerMatches(undefined, token)).toBe(false);
    expect(bearerMatches('Bearer ', token)).toBe(false);
  });
});
