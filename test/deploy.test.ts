/**
 * The deployment examples in deploy/. No Docker engine runs here, so the server's Dockerfile is
 * checked, not built: what it copies exists and is in its build context, the build copies what
 * `npm pack` needs to build, and the image runs the server as a non-root user with its data in a
 * volume. The systemd units go through `systemd-analyze verify` when systemd is installed; the
 * settings they and server.env name must be ones the server knows.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SERVER_SETTINGS } from '../src/config/serverConfig.js';
import { tempDir } from './support/databases.js';
import { REPO } from './support/serverProcess.js';

const DEPLOY = path.join(REPO, 'deploy');
const read = (name: string) => fs.readFileSync(path.join(DEPLOY, name), 'utf8');
const SERVER_ENV_NAMES = new Set<string>(SERVER_SETTINGS.map((s) => s.env));

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined and comments dropped, split into stages. */
function dockerfileStages(text: string): Instruction[][] {
  const joined = text
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const stages: Instruction[][] = [];
  for (const line of joined.split('\n')) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (!m) continue;
    const ins = { op: m[1].toUpperCase(), args: m[2].trim() };
    if (ins.op === 'FROM') stages.push([]);
    stages[stages.length - 1].push(ins);
  }
  return stages;
}

/** Words of a shell-form or JSON-form instruction, flags (--from=...) apart. */
function words(args: string): { flags: Record<string, string>; rest: string[] } {
  const all = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  const flags: Record<string, string> = {};
  const rest: string[] = [];
  for (const w of all) {
    const f = /^--([a-z-]+)=(.*)$/.exec(w);
    if (f) flags[f[1]] = f[2];
    else rest.push(w);
  }
  return { flags, rest };
}

/** Whether a path is sent to the build by a `*` + `!path` style .dockerignore. */
function inContext(ignore: string, file: string): boolean {
  const rules = ignore.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  let included = true;
  for (const rule of rules) {
    const negated = rule.startsWith('!');
    const pattern = (negated ? rule.slice(1) : rule).replace(/\/$/, '');
    const matches = pattern === '*' || file === pattern || file.startsWith(pattern + '/');
    if (matches) included = negated;
  }
  return included;
}

function unitKeys(text: string): Array<[string, string]> {
  return text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}
const unitValue = (text: string, key: string) => unitKeys(text).filter(([k]) => k === key).map(([, v]) => v);
const unitEnv = (text: string) => new Map(unitValue(text, 'Environment').map((v) => [v.slice(0, v.indexOf('=')), v.slice(v.indexOf('=') + 1)]));

describe('deploy/Dockerfile (the server image; checked, not built: no Docker engine here)', () => {
  const stages = dockerfileStages(read('Dockerfile'));
  const final = stages[stages.length - 1];
  const ignore = read('Dockerfile.dockerignore');
  const copies = stages.flat().filter((i) => i.op === 'COPY').map((i) => words(i.args));

  it('builds on the official Node 20 images', () => {
    expect(stages.length).toBeGreaterThan(0);
    for (const stage of stages) expect(words(stage[0].args).rest[0]).toMatch(/^node:20(-|$)/);
  });

  it('copies only files that exist and are in the build context, and stages that exist', () => {
    const stageNames = stages.map((s) => /\bAS\s+(\S+)/i.exec(s[0].args)?.[1]).filter(Boolean);
    for (const { flags, rest } of copies) {
      const sources = rest.slice(0, -1);
      expect(sources.length).toBeGreaterThan(0);
      if (flags.from) {
        expect(stageNames).toContain(flags.from);
        continue;
      }
      for (const source of sources) {
        const rel = source.replace(/\/$/, '');
        expect(fs.existsSync(path.join(REPO, rel)), `${source} exists in the repository`).toBe(true);
        expect(inContext(ignore, rel), `${source} is not excluded by Dockerfile.dockerignore`).toBe(true);
      }
    }
  });

  it('copies what the build (npm pack → prepack → npm run build) reads', () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    expect(scripts.prepack).toMatch(/npm run build/);
    const needed = [...new Set(scripts.build.match(/[\w./-]+\.(?:json|mjs|js)\b/g) ?? []), 'package-lock.json', 'src/runner/python/bootstrap.py', 'README.md'];
    const copied = copies.filter((c) => !c.flags.from).flatMap((c) => c.rest.slice(0, -1).map((s) => s.replace(/\/$/, '')));
    for (const file of needed) expect(copied.some((c) => file === c || file.startsWith(c + '/')), `${file} is copied into the build`).toBe(true);
  });

  it('runs the server as a non-root user, with its data folder a volume', () => {
    const users = final.filter((i) => i.op === 'USER').map((i) => i.args);
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^(root|0)(:|$)/);
    const env = final.filter((i) => i.op === 'ENV').map((i) => i.args).join(' ');
    const dataDir = /DJANGOCOMMAND_DATA_DIR=(\S+)/.exec(env)?.[1];
    expect(dataDir).toBeDefined();
    const volumes = final.filter((i) => i.op === 'VOLUME').flatMap((i) => words(i.args).rest);
    expect(volumes).toContain(dataDir);
    expect(env).toMatch(/DJANGOCOMMAND_HOST=0\.0\.0\.0/);
    const port = /DJANGOCOMMAND_PORT=(\d+)/.exec(env)?.[1];
    expect(final.filter((i) => i.op === 'EXPOSE').map((i) => i.args)).toContain(port);
    const cmd = final.filter((i) => i.op === 'CMD').map((i) => words(i.args).rest);
    expect(cmd[cmd.length - 1]).toEqual(['djangocommand', 'server']);
    for (const name of env.match(/\bDJANGOCOMMAND_[A-Z_]+(?==)/g) ?? []) expect(SERVER_ENV_NAMES).toContain(name);
  });
});

describe('deploy/*.service (systemd units)', () => {
  const server = read('djangocommand-server.service');
  const runner = read('djangocommand-runner.service');

  // scripts/setup-system.sh installs systemd's tools; a machine without them fails here, loudly.
  it('pass systemd-analyze verify without a warning', () => {
    // verify insists that ExecStart's program exists: point it at a stand-in, nothing else changes.
    const dir = tempDir('dc-units-');
    const stand = path.join(dir, 'djangocommand');
    fs.writeFileSync(stand, '#!/bin/sh\n', { mode: 0o755 });
    const units = ['djangocommand-server.service', 'djangocommand-runner.service'].map((name) => {
      const file = path.join(dir, name);
      fs.writeFileSync(file, read(name).replaceAll('/usr/local/bin/djangocommand', stand));
      return file;
    });
    const res = spawnSync('systemd-analyze', ['verify', ...units], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    expect(res.stderr + res.stdout).toBe('');
    expect(res.status).toBe(0);
  });

  it('run the server as its own user with its data in the state directory, and only known settings', () => {
    expect(unitValue(server, 'User')[0]).toMatch(/^(?!root$)\w+/);
    expect(unitValue(server, 'ExecStart')[0]).toMatch(/^\/\S+\/djangocommand server\b/);
    const env = unitEnv(server);
    expect(env.get('DJANGOCOMMAND_DATA_DIR')).toBe(`/var/lib/${unitValue(server, 'StateDirectory')[0]}`);
    for (const name of env.keys()) expect(SERVER_ENV_NAMES).toContain(name);
  });

  it('run the runner in the foreground, stopped gracefully (the runner, not systemd, stops the commands)', () => {
    const exec = unitValue(runner, 'ExecStart')[0];
    expect(exec).toMatch(/^\/\S+\/djangocommand start\b/);
    expect(exec).not.toMatch(/\s(-d|--detach)\b/);
    expect(unitValue(runner, 'KillMode')).toEqual(['mixed']);
    expect(Number(unitValue(runner, 'TimeoutStopSec')[0])).toBeGreaterThan(30); // the runner's default --grace
    expect(unitValue(runner, 'WorkingDirectory')).toHaveLength(1);
    expect(unitEnv(runner).get('DJANGOCOMMAND_STATE_DIR')).toBe(`/var/lib/${unitValue(runner, 'StateDirectory')[0]}`);
  });
});

describe('deploy/server.env and the reverse proxies', () => {
  it('server.env sets only settings the server knows, trusting the proxy', () => {
    const lines = read('server.env').split('\n').map((l) => l.replace(/^#\s*/, '')).filter((l) => /^[A-Z_]+=/.test(l));
    const names = lines.map((l) => l.slice(0, l.indexOf('=')));
    for (const name of names) expect(SERVER_ENV_NAMES).toContain(name);
    expect(lines).toContain('DJANGOCOMMAND_TRUST_PROXY=true');
  });

  it('nginx.conf overwrites the forwarded headers and passes WebSockets and live output through', () => {
    const conf = read('nginx.conf').replace(/#.*$/gm, '');
    expect(conf).toMatch(/proxy_set_header X-Forwarded-For \$remote_addr;/);
    expect(conf).not.toMatch(/\$proxy_add_x_forwarded_for/);
    expect(conf).toMatch(/proxy_set_header X-Forwarded-Proto \$scheme;/);
    expect(conf).toMatch(/proxy_set_header Upgrade \$http_upgrade;/);
    expect(conf).toMatch(/proxy_buffering off;/);
    expect(conf).toMatch(/proxy_pass http:\/\/127\.0\.0\.1:8600;/);
  });
});
