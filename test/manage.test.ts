/**
 * The way in for django-middle-management users (`POST /__manage__/<command>`) and `?wait=` on
 * creating an execution, in-process on both databases, with a v1 runner played by the test.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DB_KINDS } from './support/databases.js';
import { syncCommands, testApp, type TestApp } from './support/inProcess.js';
import { optionsToArgv } from '../src/domain/optionsToArgv.js';

describe.each(DB_KINDS)('synchronous runs on %s', (kind) => {
  let t: TestApp;
  beforeEach(async () => {
    t = await testApp(kind);
    await syncCommands(t, 'shop', ['migrate', 'check']);
  });
  afterEach(async () => t.close());

  /** Plays the runner: takes the next offered execution, prints `lines`, ends it with `exitCode`. */
  const runOne = async (lines: string[], exitCode = 0) => {
    let offered: Array<{ id: string; args: string }> = [];
    for (let i = 0; i < 100 && offered.length === 0; i++) {
      offered = (await t.runner('shop', 'GET', '/pending/')).json().executions;
      if (offered.length === 0) await new Promise((r) => setTimeout(r, 20));
    }
    const { id, args } = offered[0];
    await t.runner('shop', 'POST', `/executions/${id}/start/`);
    await t.runner('shop', 'POST', `/executions/${id}/output/`, { chunk_number: 1, is_stderr: false, segments: lines.map((content) => ({ timestamp: 1, content: content + '\n' })) });
    await t.runner('shop', 'POST', `/executions/${id}/complete/`, { exit_code: exitCode, status: exitCode === 0 ? 'success' : 'failed' });
    return args;
  };
  const manage = (command: string, body: unknown, accept = 'text/plain', query = '?project=shop') =>
    t.app.inject({ method: 'POST', url: `/__manage__/${command}${query}`, headers: { authorization: `Bearer ${t.token}`, 'content-type': 'application/json', accept }, payload: JSON.stringify(body) });

  it('answers "Command executed" when the command succeeded, with the options passed as arguments', async () => {
    const [res, args] = await Promise.all([manage('migrate', { data: { app_label: 'shop', fake: true } }), runOne(['Applying shop.0001... OK'])]);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/plain/);
    expect(res.body).toBe('Command executed');
    // No schema from a v1 runner: dest becomes --dest-with-dashes, true becomes the flag.
    expect(args).toBe('--app-label shop --fake');
  });

  it('answers JSON details when asked: status, exit code, execution id, the last lines', async () => {
    const [res] = await Promise.all([manage('check', {}, 'application/json'), runOne(['line 1', 'line 2', 'System check identified no issues.'])]);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ message: 'Command executed', status: 'succeeded', exit_code: 0, output_tail: expect.stringContaining('System check identified no issues.') });
    expect((await t.api('GET', `/api/v1/executions/${res.json().execution_id}`)).json().status).toBe('succeeded');
  });

  it('answers 403 "Command not allowed" for a command the runners did not report or refuse, and runs nothing', async () => {
    const res = await manage('flush', {});
    expect(res.statusCode).toBe(403);
    expect(res.body).toBe('Command not allowed');
    expect((await manage('flush', {}, 'application/json')).json()).toMatchObject({ status: 'not_allowed', code: 'DC_UNKNOWN_COMMAND' });
    expect((await t.api('GET', '/api/v1/executions')).json().items).toEqual([]);
  });

  it('answers a failed command as a server error, as call_command raising would', async () => {
    const [res] = await Promise.all([manage('check', {}, 'application/json'), runOne(['SystemCheckError: boom'], 1)]);
    expect(res.statusCode).toBe(500);
    expect(res.json()).toMatchObject({ status: 'failed', exit_code: 1, code: 'DC_COMMAND_FAILED', output_tail: expect.stringContaining('boom') });
  });

  it('refuses a bad token, a bad body and a bad timeout with DC_ errors', async () => {
    const anonymous = await t.app.inject({ method: 'POST', url: '/__manage__/check', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expect(anonymous.statusCode).toBe(401);
    expect((await manage('check', [1, 2])).json().code).toBe('DC_VALIDATION');
    expect((await manage('check', { data: { x: { nested: true } } })).json().code).toBe('DC_BAD_ARGS');
    expect((await manage('check', {}, 'text/plain', '?project=shop&timeout=0')).json().code).toBe('DC_VALIDATION');
  });

  it('waits for the end on POST /executions?wait=, answering with the last lines', async () => {
    const [res] = await Promise.all([t.api('POST', '/api/v1/executions?wait=30', { project: 'shop', command: 'check' }), runOne(['all good'])]);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ status: 'succeeded', exit_code: 0, output_tail: 'all good\n' });
    const early = await t.api('POST', '/api/v1/projects/shop/executions?wait=1', { command: 'migrate' });
    expect(early.json().status).toBe('queued');
    expect(early.json().output_tail).toBeUndefined();
  });
});

describe('django-middle-management options to argv', () => {
  const schema = {
    arguments: [
      { dest: 'target', option_strings: [], kind: 'store', nargs: null, type: 'str', choices: null, required: true },
      { dest: 'extra', option_strings: [], kind: 'store', nargs: '*', type: 'str', choices: null, required: false },
      { dest: 'count', option_strings: ['--count'], kind: 'store', nargs: null, type: 'int', choices: null, required: false },
      { dest: 'dry_run', option_strings: ['--dry-run'], kind: 'store_true', nargs: 0, type: 'str', choices: null, required: false },
      { dest: 'tag', option_strings: ['--tag'], kind: 'append', nargs: null, type: 'str', choices: null, required: false },
      { dest: 'verbosity', option_strings: ['-v', '--verbosity'], kind: 'store', nargs: null, type: 'int', choices: [0, 1, 2, 3], required: false },
    ],
    groups: [],
    subcommands: null,
  };
  it('maps dests through the argparse schema: positionals in order, flags, repeated options', () => {
    expect(optionsToArgv(schema, { tag: ['a b', 'c'], dry_run: true, extra: ['x', 'y'], target: 'there', count: 3, verbosity: 2 })).toEqual({
      argv: ['there', 'x', 'y', '--tag', 'a b', '--tag', 'c', '--dry-run', '--count', '3', '--verbosity', '2'],
    });
    expect(optionsToArgv(schema, { target: 't', dry_run: false })).toEqual({ argv: ['t'] });
    expect(optionsToArgv(schema, { target: 't', nope: 1 })).toMatchObject({ problem: { field: 'nope', message: expect.stringMatching(/unknown option "nope".*count, dry_run/) } });
    expect(optionsToArgv(schema, { dry_run: 'yes' })).toMatchObject({ problem: { field: 'dry_run' } });
  });
});
