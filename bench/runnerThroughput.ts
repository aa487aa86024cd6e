/**
 * Output throughput end to end through our runner: a command printing --mb megabytes
 * (`manage.py spew --bytes N`, started warm by the runner) → runner (chunks, spool on disk,
 * protocol v2 WebSocket) → server (stored in the database). Plus the peak memory of the runner
 * and of the server, at two output sizes, to show whether memory grows with the output.
 *
 * For each size (--small-mb, then --mb) a fresh server on a fresh database and a fresh runner
 * process, so the peaks (VmHWM, the kernel's high-water mark of resident memory) are each
 * size's own. The time runs from just before the POST to the moment the client sees the
 * execution `succeeded` (polled every 50 ms); the server's own `finished_at - created_at` is
 * reported too. The execution must have succeeded with exactly N output bytes.
 *
 * "MB" here is 10^6 bytes (spew --bytes 500000000 is 500 MB), unlike the other benchmarks.
 * The runner's figure is the node process of `djangocommand start`; its warm Python process and
 * the command itself are other processes, not counted.
 *
 *   node dist/bench/runnerThroughput.js [--mb 500] [--small-mb 100] [--db postgres]
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  PROJECT,
  check,
  createExecution,
  parseOptions,
  pollExecution,
  positiveInt,
  processMemory,
  progress,
  round,
  runBenchmark,
  serverPid,
  sleep,
  startBenchServer,
  TERMINAL_STATUSES,
  type ProcessMemory,
} from './common.js';
import { benchExample, startBenchRunner } from './runnerProcess.js';

const COMMAND = 'spew';
const MB = 1_000_000;

const options = parseOptions({
  mb: { default: '500', help: 'output of the main run, in MB (10^6 bytes)' },
  'small-mb': { default: '100', help: 'output of the first, smaller run, in MB (for peak memory by size)' },
});
const mainMb = positiveInt('mb', options.mb);
const smallMb = positiveInt('small-mb', options['small-mb']);

interface SizeResult {
  mb: number;
  seconds: number;
  serverSeconds: number;
  runner: ProcessMemory;
  server: ProcessMemory;
  runnerRssMbIdle: number;
  serverRssMbIdle: number;
  /** The largest size the runner's spool reached on disk while the command ran (sampled). */
  spoolPeakMb: number;
}

function duSync(dir: string): number {
  let total = 0;
  const walk = (d: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        try {
          total += fs.statSync(p).size;
        } catch {
          // removed meanwhile
        }
      }
    }
  };
  walk(dir);
  return total;
}

async function runSize(mb: number, env: Record<string, string>): Promise<SizeResult> {
  progress(`${mb} MB on a fresh ${options.db} server and a fresh runner`);
  const bench = await startBenchServer(options.db, []);
  try {
    const runner = await startBenchRunner(bench.server.url, bench.key, env);
    try {
      for (let tries = 0; ; tries++) {
        const found = await bench.api('GET', `/api/v1/projects/${PROJECT}/commands/${COMMAND}`).then(() => true, () => false);
        if (found) break;
        check(tries < 200, `the runner did not report ${COMMAND}`);
        await sleep(50);
      }
      const runnerIdle = processMemory(runner.pid).rssMb;
      const serverIdle = processMemory(serverPid(bench)).rssMb;
      const bytes = mb * MB;
      let spoolPeak = 0;
      const spoolWatch = setInterval(() => (spoolPeak = Math.max(spoolPeak, duSync(path.join(runner.stateDir, 'spool')))), 250);
      const started = Date.now();
      const created = await createExecution(bench, COMMAND, ['--bytes', String(bytes)]);
      let lastReport = Date.now();
      const final = await pollExecution(
        bench,
        created.id,
        (e) => {
          if (Date.now() - lastReport > 5000) {
            lastReport = Date.now();
            progress(`  ${e.status}, ${round(e.output_bytes / MB, 0)} MB stored`);
          }
          return TERMINAL_STATUSES.has(e.status);
        },
        { everyMs: 50, timeoutMs: 170_000 },
      );
      const seconds = (Date.now() - started) / 1000;
      clearInterval(spoolWatch);
      check(final.status === 'succeeded', `execution ${created.id} ended ${final.status}`);
      check(final.output_bytes === bytes, `execution ${created.id} stored ${final.output_bytes} output bytes, spew printed ${bytes}`);
      check(/spew --bytes \d+ started \(warm/.test(runner.logs()), 'spew did not start warm');
      const result: SizeResult = {
        mb,
        seconds,
        serverSeconds: (Date.parse(final.finished_at!) - Date.parse(final.created_at)) / 1000,
        runner: processMemory(runner.pid),
        server: processMemory(serverPid(bench)),
        runnerRssMbIdle: runnerIdle,
        serverRssMbIdle: serverIdle,
        spoolPeakMb: round(spoolPeak / MB, 0),
      };
      progress(
        `  ${round(mb / seconds, 1)} MB/s (${round(seconds, 2)} s); peak RSS runner ${result.runner.peakRssMb} MB, server ${result.server.peakRssMb} MB; spool peak ${result.spoolPeakMb} MB`,
      );
      return result;
    } finally {
      await runner.stop();
    }
  } finally {
    await bench.stop();
  }
}

await runBenchmark({
  maxSeconds: 300,
  async main() {
    const example = benchExample();
    const small = await runSize(smallMb, example.env);
    const main = await runSize(mainMb, example.env);
    const perSize = (r: SizeResult) => ({ runner: r.runner.peakRssMb, server: r.server.peakRssMb });
    return {
      benchmark: 'runner_throughput',
      db: options.db,
      mb: mainMb,
      seconds: round(main.seconds, 2),
      mb_per_s: round(mainMb / main.seconds, 1),
      server_seconds: round(main.serverSeconds, 2),
      runner_peak_rss_mb: main.runner.peakRssMb,
      server_peak_rss_mb: main.server.peakRssMb,
      peak_rss_mb_by_size: { [smallMb]: perSize(small), [mainMb]: perSize(main) },
      idle_rss_mb: { runner: main.runnerRssMbIdle, server: main.serverRssMbIdle },
      mb_per_s_by_size: { [smallMb]: round(smallMb / small.seconds, 1), [mainMb]: round(mainMb / main.seconds, 1) },
      runner_spool_peak_mb_by_size: { [smallMb]: small.spoolPeakMb, [mainMb]: main.spoolPeakMb },
    };
  },
});
