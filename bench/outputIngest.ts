/**
 * Output ingestion throughput (MB/s) through runner protocol v1, download throughput of the
 * full output, and the server's memory while it does both.
 *
 * For each size (the main --mb and a quarter of it), a fresh server process on a fresh
 * database: one execution is created and started through v1, then output is sent as 1 MiB
 * chunks of ~1 KiB lines, one chunk at a time as the Python runner does (it sends the next
 * chunk of an execution only when the previous one was answered). Then the execution is
 * completed and its whole output downloaded from GET /api/v1/executions/ID/output, compared
 * byte for byte with what was sent. The server's peak RSS (VmHWM) at both sizes shows whether
 * its memory grows with the size of an output; a shorter run with two chunks in flight shows
 * whether pipelining would help.
 *
 *   node dist/bench/outputIngest.js [--db postgres] [--mb 1024] [--chunk-kib 1024] [--line-bytes 1024]
 */
import type { V1Client } from '../test/support/v1Client.js';
import {
  PROJECT,
  check,
  elapsedMs,
  mbPerSecond,
  now,
  parseOptions,
  positiveInt,
  processMemory,
  progress,
  runBenchmark,
  serverPid,
  startBenchServer,
  type BenchServer,
  type ProcessMemory,
} from './common.js';

const COMMAND = 'spew';
const MIB = 1024 * 1024;

const options = parseOptions({
  mb: { default: '1024', help: 'output sent in the main run, in MiB (a second run sends a quarter of it)' },
  'chunk-kib': { default: '1024', help: 'size of one output chunk (one output/ request), in KiB' },
  'line-bytes': { default: '1024', help: 'length of one output line (one segment) in bytes, newline included' },
});
const mainMb = positiveInt('mb', options.mb);
const chunkBytes = positiveInt('chunk-kib', options['chunk-kib']) * 1024;
const lineBytes = positiveInt('line-bytes', options['line-bytes']);
if (chunkBytes % lineBytes !== 0) throw new Error('--chunk-kib * 1024 must be a multiple of --line-bytes');
if (lineBytes < 100) throw new Error('--line-bytes must be at least 100 (a log line prefix and a newline)');
if ((mainMb * MIB) % (8 * chunkBytes) !== 0) throw new Error('--mb must hold a whole number of chunks at an eighth of its size');

// ---- the output a runner sends --------------------------------------------------------------

/**
 * Makes output/ request bodies of realistic log lines without spending the benchmark's own CPU
 * on it: a few chunk templates are generated once (varied text, so a database that compresses
 * values does no better than on real logs), and a request body is its chunk_number glued to
 * a pre-serialised template.
 */
class OutputMaker {
  private static readonly TEMPLATES = 8;
  /** The text of each template, as the download must return it. */
  readonly texts: Buffer[] = [];
  /** Each template's `segments` array as JSON. */
  private readonly segmentsJson: Buffer[] = [];

  constructor(
    readonly chunkBytes: number,
    readonly lineBytes: number,
  ) {
    const random = seededRandom(42);
    const startedAt = Date.now() / 1000;
    for (let t = 0; t < OutputMaker.TEMPLATES; t++) {
      const lines = Array.from({ length: chunkBytes / lineBytes }, (_, i) => logLine(t, i, lineBytes, random));
      // One line per segment, each stamped when it was "printed", like the Python runner's chunks.
      const segments = lines.map((content, i) => ({ timestamp: startedAt + t + i / 1000, content }));
      this.texts.push(Buffer.from(lines.join(''), 'utf8'));
      this.segmentsJson.push(Buffer.from(JSON.stringify(segments), 'utf8'));
    }
  }

  get segmentsPerChunk(): number {
    return this.chunkBytes / this.lineBytes;
  }

  textOf(chunkNumber: number): Buffer {
    return this.texts[chunkNumber % this.texts.length];
  }

  body(chunkNumber: number): Buffer {
    return Buffer.concat([
      Buffer.from(`{"chunk_number":${chunkNumber},"is_stderr":false,"segments":`),
      this.segmentsJson[chunkNumber % this.segmentsJson.length],
      Buffer.from('}'),
    ]);
  }
}

const WORDS = 'migrating applying index rows batch shop order customer invoice OK skipped updated cache warm queue done'.split(' ');

/** One ASCII log line of exactly `length` bytes, newline included. */
function logLine(template: number, index: number, length: number, random: () => number): string {
  let line = `2026-11-22 12:00:${String(index % 60).padStart(2, '0')},${String(index % 1000).padStart(3, '0')} INFO shop.tasks: template ${template} line ${index}:`;
  while (line.length < length - 1) line += ' ' + WORDS[Math.floor(random() * WORDS.length)];
  return line.slice(0, length - 1) + '\n';
}

/** mulberry32: the same "random" text on every run, so runs are comparable. */
function seededRandom(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- one execution's output: send, complete, download -----------------------------------------

/** Creates an execution through the REST API and starts it through v1, as a runner does. */
async function startExecution(bench: BenchServer): Promise<string> {
  const created = await bench.api<{ id: string }>('POST', `/api/v1/projects/${PROJECT}/executions`, { command: COMMAND });
  const offered = await bench.v1.pending();
  check(offered.some((e) => e.id === created.id), 'the new execution was not offered on pending/');
  await bench.v1.start(created.id);
  return created.id;
}

/**
 * Sends chunks 1..count with `inFlight` requests at a time (1: as the Python runner does).
 * Returns the milliseconds it took.
 */
async function sendOutput(client: V1Client, id: string, maker: OutputMaker, count: number, inFlight: number): Promise<number> {
  const reportEvery = Math.max(1, Math.floor((256 * MIB) / maker.chunkBytes));
  let next = 1;
  const sender = async () => {
    while (next <= count) {
      const chunkNumber = next++;
      const res = await client.request('POST', `/api/runner/executions/${id}/output/`, { rawBody: maker.body(chunkNumber) });
      const body = res.body as { ok?: boolean; duplicate?: boolean } | null;
      check(res.status === 200 && body?.ok === true && body.duplicate === false, `chunk ${chunkNumber} answered ${res.status}: ${res.text.slice(0, 300)}`);
      if (chunkNumber % reportEvery === 0) progress(`  sent ${(chunkNumber * maker.chunkBytes) / MIB} MiB`);
    }
  };
  const started = now();
  await Promise.all(Array.from({ length: inFlight }, sender));
  return elapsedMs(started);
}

/**
 * Streams the full output and compares it, as it arrives, with what was sent (chunk 1's text,
 * then chunk 2's, ...). Returns the bytes received and the milliseconds it took.
 */
async function downloadOutput(bench: BenchServer, id: string, maker: OutputMaker, chunks: number): Promise<{ bytes: number; ms: number }> {
  const started = now();
  const res = await fetch(`${bench.server.url}/api/v1/executions/${id}/output`, { headers: { authorization: `Bearer ${bench.token}` } });
  check(res.ok && res.body, `GET output answered ${res.status}`);
  let bytes = 0;
  for await (const piece of res.body as unknown as AsyncIterable<Uint8Array>) {
    checkSameAsSent(piece, bytes, maker, chunks);
    bytes += piece.byteLength;
  }
  return { bytes, ms: elapsedMs(started) };
}

/** Compares a downloaded piece starting at byte `offset` of the output with the text sent there. */
function checkSameAsSent(piece: Uint8Array, offset: number, maker: OutputMaker, chunks: number): void {
  let done = 0;
  while (done < piece.byteLength) {
    const at = offset + done;
    const chunkNumber = Math.floor(at / maker.chunkBytes) + 1;
    check(chunkNumber <= chunks, `the download is longer than the ${chunks * maker.chunkBytes} bytes sent`);
    const within = at % maker.chunkBytes;
    const length = Math.min(piece.byteLength - done, maker.chunkBytes - within);
    const expected = maker.textOf(chunkNumber).subarray(within, within + length);
    check(Buffer.compare(piece.subarray(done, done + length), expected) === 0, `the download differs from the output sent in chunk ${chunkNumber}`);
    done += length;
  }
}

// ---- one size on a fresh server ---------------------------------------------------------------

interface SizeResult {
  mb: number;
  ingestMbPerS: number;
  downloadMbPerS: number;
  before: ProcessMemory;
  /** After sending everything, before the download. */
  afterIngest: ProcessMemory;
  after: ProcessMemory;
  /** Only for the run asked to also try two chunks in flight. */
  twoInFlight?: { mb: number; mbPerS: number };
}

/**
 * Sends `mb` MiB to a new execution on a fresh server, completes it and downloads it back;
 * then, if `twoInFlightMb` is given, sends that much again to a second execution with two
 * chunks in flight.
 */
async function runSize(mb: number, maker: OutputMaker, twoInFlightMb?: number): Promise<SizeResult> {
  progress(`${mb} MiB on a fresh ${options.db} server`);
  const bench = await startBenchServer(options.db, [COMMAND]);
  try {
    const pid = serverPid(bench);
    const chunks = (mb * MIB) / maker.chunkBytes;
    const id = await startExecution(bench);
    const before = processMemory(pid);

    const ingestMs = await sendOutput(bench.v1, id, maker, chunks, 1);
    const afterIngest = processMemory(pid);
    await bench.v1.complete(id, { exit_code: 0, status: 'success' });

    const download = await downloadOutput(bench, id, maker, chunks);
    const after = processMemory(pid);
    check(download.bytes === mb * MIB, `downloaded ${download.bytes} bytes, sent ${mb * MIB}`);
    const view = await bench.api<{ status: string; output_bytes: number }>('GET', `/api/v1/executions/${id}`);
    check(view.status === 'succeeded' && view.output_bytes === mb * MIB, `the execution is ${view.status} with ${view.output_bytes} output bytes`);

    const result: SizeResult = {
      mb,
      ingestMbPerS: mbPerSecond(mb * MIB, ingestMs),
      downloadMbPerS: mbPerSecond(download.bytes, download.ms),
      before,
      afterIngest,
      after,
    };
    if (twoInFlightMb !== undefined) {
      // After the memory figures were taken, so this run cannot inflate them.
      progress(`  ${twoInFlightMb} MiB with 2 chunks in flight`);
      const second = await startExecution(bench);
      const ms = await sendOutput(bench.v1, second, maker, (twoInFlightMb * MIB) / maker.chunkBytes, 2);
      result.twoInFlight = { mb: twoInFlightMb, mbPerS: mbPerSecond(twoInFlightMb * MIB, ms) };
      await bench.v1.complete(second, { exit_code: 0, status: 'success' });
    }
    progress(`  ingest ${result.ingestMbPerS} MB/s, download ${result.downloadMbPerS} MB/s, server peak RSS ${after.peakRssMb} MB`);
    return result;
  } finally {
    await bench.stop();
  }
}

await runBenchmark({
  maxSeconds: 300,
  async main() {
    const maker = new OutputMaker(chunkBytes, lineBytes);
    // The small size first: it fails fast if something is wrong, and it hosts the two-in-flight
    // try, kept short (an eighth) because the sequential rate does not depend on the size.
    const small = await runSize(mainMb / 4, maker, mainMb / 8);
    const main = await runSize(mainMb, maker);
    return {
      benchmark: 'output_ingest',
      db: options.db,
      mb: mainMb,
      chunk_kib: chunkBytes / 1024,
      segments_per_chunk: maker.segmentsPerChunk,
      ingest_mb_per_s: main.ingestMbPerS,
      download_mb_per_s: main.downloadMbPerS,
      server_rss_mb_before: main.before.rssMb,
      server_peak_rss_mb: main.after.peakRssMb,
      server_peak_rss_mb_during_ingest: main.afterIngest.peakRssMb,
      server_rss_mb_after: main.after.rssMb,
      peak_rss_mb_by_size: { [small.mb]: small.after.peakRssMb, [main.mb]: main.after.peakRssMb },
      ingest_peak_rss_mb_by_size: { [small.mb]: small.afterIngest.peakRssMb, [main.mb]: main.afterIngest.peakRssMb },
      ingest_mb_per_s_by_size: { [small.mb]: small.ingestMbPerS, [main.mb]: main.ingestMbPerS },
      download_mb_per_s_by_size: { [small.mb]: small.downloadMbPerS, [main.mb]: main.downloadMbPerS },
      two_chunks_in_flight: { mb: small.twoInFlight!.mb, ingest_mb_per_s: small.twoInFlight!.mbPerS, sequential_ingest_mb_per_s: small.ingestMbPerS },
    };
  },
});
