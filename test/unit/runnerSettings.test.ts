/** The runner's settings: flag, then environment, then Django settings, then the default. */
import { describe, expect, it } from 'vitest';
import { resolveRunnerSettings, type DjangoSettingsReport } from '../../src/runner/settings.js';

function django(settings: Record<string, unknown>): DjangoSettingsReport {
  const types = Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, Array.isArray(v) ? 'tuple' : v === null ? 'NoneType' : typeof v === 'number' ? 'int' : typeof v === 'boolean' ? 'bool' : 'str']));
  return { settings, types, base_dir: '/srv/shop', python_version: '3.11.2', django_version: '5.0', settings_module: 'shop.settings' };
}
const BASE = { DJANGOCOMMAND_API_KEY: 'dc_x', DJANGOCOMMAND_SERVER_URL: 'https://dc.example.com' };

describe('runner settings', () => {
  it("reads the runner's own settings from Django settings too, with defaults", () => {
    const defaults = resolveRunnerSettings({}, {}, django(BASE));
    expect(defaults).toMatchObject({ maxConcurrency: 4, warmStart: true, coldCommands: [], killGraceMs: 5000, spoolMaxBytes: 1024 * 1048576 });
    const s = resolveRunnerSettings({}, {}, django({
      ...BASE,
      DJANGOCOMMAND_MAX_CONCURRENCY: 2,
      DJANGOCOMMAND_WARM_START: false,
      DJANGOCOMMAND_COLD_COMMANDS: ['shell'],
      DJANGOCOMMAND_KILL_GRACE: 10,
      DJANGOCOMMAND_SPOOL_MAX_MB: 64,
    }));
    expect(s).toMatchObject({ maxConcurrency: 2, warmStart: false, coldCommands: ['shell'], killGraceMs: 10_000, spoolMaxBytes: 64 * 1048576 });
  });

  it('lets the environment override Django settings, and a flag override both', () => {
    const report = django({ ...BASE, DJANGOCOMMAND_MAX_CONCURRENCY: 2, DJANGOCOMMAND_SPOOL_MAX_MB: 64 });
    const env = { DJANGOCOMMAND_MAX_CONCURRENCY: '8', DJANGOCOMMAND_SPOOL_MAX_MB: '32' };
    expect(resolveRunnerSettings({}, env, report)).toMatchObject({ maxConcurrency: 8, spoolMaxBytes: 32 * 1048576 });
    expect(resolveRunnerSettings({ maxConcurrency: '3' }, env, report).maxConcurrency).toBe(3);
  });

  it.each([
    [{ DJANGOCOMMAND_SPOOL_MAX_MB: 8 }, /DJANGOCOMMAND_SPOOL_MAX_MB is 8; it must be a whole number of MiB, at least 16/],
    [{ DJANGOCOMMAND_SPOOL_MAX_MB: 'lots' }, /DJANGOCOMMAND_SPOOL_MAX_MB must be a number \(it is "lots"\)/],
    [{ DJANGOCOMMAND_MAX_CONCURRENCY: 0 }, /DJANGOCOMMAND_MAX_CONCURRENCY is 0; it must be a whole number from 1 to 100/],
    [{ DJANGOCOMMAND_KILL_GRACE: -1 }, /DJANGOCOMMAND_KILL_GRACE is -1; it must be from 0 to 3600 seconds/],
    [{ DJANGOCOMMAND_COLD_COMMANDS: 'shell' }, /DJANGOCOMMAND_COLD_COMMANDS is a string \("shell"\); it must be a tuple/],
  ])('refuses %j with a line that names the setting', (extra, message) => {
    expect(() => resolveRunnerSettings({}, {}, django({ ...BASE, ...extra }))).toThrow(message);
  });
});
