/**
 * Soak: 3 server replicas on one PostgreSQL database, runners of ours spread over them, a steady
 * load of executions through the REST API, and one replica killed with SIGKILL (and started
 * again) every `--kill-every` seconds for `--duration` seconds. Prints the result as JSON and
 * exits 1 when an invariant fails: an execution stuck, lost, not succeeded, with output that is
 * not exactly what its command printed, or started twice. The engine is test/support/soak.ts
 * (the 60-second version runs in the tests: test/e2e/soak.test.ts). Always PostgreSQL: replicas
 * share one database; `--db` is ignored.
 *
 *   node dist/bench/soak.js [--duration 600] [--kill-every 30] [--rate 5] [--runners 6]
 */
import { runSoak, soakFailures } from '../test/support/soak.js';
import { atCleanup, parseOptions, positiveInt, progress, runBenchmark } from './common.js';

const opts = parseOptions({
  duration: { default: '600', help: 'seconds of load and kills' },
  'kill-every': { default: '30', help: 'seconds between two replica kills (SIGKILL, then started again)' },
  rate: { default: '5', help: 'executions created per second' },
  replicas: { default: '3', help: 'server processes on the one PostgreSQL database' },
  runners: { default: '6', help: 'runners (djangocommand start), spread over the replicas' },
  settle: { default: '600', help: 'after the load: seconds everything may take to end, at most, before what is left counts as stuck' },
  stall: { default: '60', help: 'after the load: seconds without any execution ending before what is left counts as stuck' },
});
const durationS = positiveInt('duration', opts.duration);
const settleS = positiveInt('settle', opts.settle);

await runBenchmark({
  maxSeconds: durationS + settleS + 300,
  async main() {
    const result = await runSoak({
      durationS,
      killEveryS: positiveInt('kill-every', opts['kill-every']),
      rate: positiveInt('rate', opts.rate),
      replicas: positiveInt('replicas', opts.replicas),
      runners: positiveInt('runners', opts.runners),
      settleS,
      stallS: positiveInt('stall', opts.stall),
      log: progress,
      atCleanup,
    });
    const failures = soakFailures(result);
    for (const f of failures) progress(`invariant failed: ${f}`);
    if (failures.length > 0) process.exitCode = 1;
    return result;
  },
});
