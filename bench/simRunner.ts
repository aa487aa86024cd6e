/**
 * Simulated protocol v2 runners for benchmarks: the handshake ours does (key, timestamp, nonce,
 * hello with the commands hash of its one command `noop`), the catalogue when the server asks,
 * pings (the ws library answers them), and `started` + `finished` at once for every `execute`.
 * And the CPU a process used, from /proc, to see what a fleet costs the server.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import WebSocket from 'ws';
import { commandsHash } from '../src/domain/commandsHash.js';
import { V2_PATH, V2_PROTOCOL_VERSION, type Hello, type ServerMessage } from '../src/shared/protocolV2.js';
import { progress, round, sleep } from './common.js';

export const COMMAND = { name: 'noop', app_label: 'demo', help_text: 'usage: manage.py noop [-h]', schema: null };

/** CPU seconds (user + system) the process has used so far, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** The server's CPU over `seconds`, in % of one core. */
/**
 * CPU over `seconds`, as % of one core: the server's (pid), and this process's own (the simulated
 * runners and clients, which share the machine's cores with the server).
 */
export async function cpuOver(pid: number, seconds: number): Promise<{ server: number; bench: number }> {
  const before = cpuSeconds(pid);
  const own = process.cpuUsage();
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const elapsedS = (Date.now() - t0) / 1000;
  const ownUsage = process.cpuUsage(own);
  return {
    server: round(((cpuSeconds(pid) - before) / elapsedS) * 100, 1),
    bench: round(((ownUsage.user + ownUsage.system) / 1e6 / elapsedS) * 100, 1),
  };
}

export interface SimRunner {
  ws: WebSocket;
  project: string;
}

/** One simulated v2 runner; resolves once the server welcomed it (and took its catalogue if it asked). */
export function connectRunner(
  url: string,
  project: { name: string; key: string },
  runnerId: string,
  onExecute: (id: string, at: number, ws: WebSocket) => void,
  maxConcurrency = 4,
): Promise<SimRunner> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, 'ws') + V2_PATH, {
      perMessageDeflate: false,
      headers: { authorization: `Bearer ${project.key}`, 'x-request-timestamp': String(Math.floor(Date.now() / 1000)), 'x-request-nonce': randomUUID() },
    });
    const hello: Hello = {
      type: 'hello',
      protocol: V2_PROTOCOL_VERSION,
      runner_id: runnerId,
      hostname: 'fleet-host',
      runner_version: '0.1.0',
      python_version: '3.11.2',
      django_version: '4.2',
      commands_hash: commandsHash([COMMAND]),
      max_concurrency: maxConcurrency,
      running: [],
    };
    ws.once('open', () => ws.send(JSON.stringify(hello)));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.once('error', reject);
    ws.on('message', (data) => {
      const msg = JSON.parse(data.toString()) as ServerMessage;
      if (msg.type === 'welcome') {
        if (!msg.commands_in_sync) ws.send(JSON.stringify({ type: 'commands', commands: [COMMAND] }));
        resolve({ ws, project: project.name });
      } else if (msg.type === 'execute') {
        const at = Date.now();
        onExecute(msg.execution_id, at, ws);
        ws.send(JSON.stringify({ type: 'started', execution_id: msg.execution_id, pid: 1, warm: true, at }));
        ws.send(JSON.stringify({ type: 'finished', execution_id: msg.execution_id, exit_code: 0, status: 'success', last_seq: 0, at: Date.now() }));
      } else if (msg.type === 'error') {
        progress(`server error to a runner of ${project.name}: ${msg.code} ${msg.message}`);
      }
    });
  });
}
