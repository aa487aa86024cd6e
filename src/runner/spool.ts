/**
 * The spool: every output chunk and the ending of an execution, written to the runner's disk
 * before it is sent, and kept until the server acknowledges it. After a server restart, a cut
 * network or a runner restart, what was not acknowledged is sent again; the server stores each
 * (execution, seq) once, so nothing is lost and nothing is duplicated.
 *
 * One folder per execution under <state>/spool/<id>/:
 *   seg-000001.bin …  the binary `output` frames, each after its u32 length, in seq order, in
 *                     segments of about 8 MiB; a segment whose every frame is acknowledged is
 *                     deleted, so disk use follows what is unacknowledged, not the output size
 *   acked             one acknowledged seq per line
 *   finished.json     the `finished` message, once the process ended
 * Only offsets stay in memory, so a huge output costs neither memory nor, once sent, disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeOutputFrame, encodeOutputFrame, type Finished, type Output } from '../shared/protocolV2.js';

const SEGMENT_BYTES = 8 * 1024 * 1024;

interface Entry {
  seq: number;
  segment: number;
  offset: number;
  length: number;
}

interface Segment {
  fd: number;
  size: number;
  /** Frames in it not acknowledged yet. */
  unacked: number;
}

export class ExecutionSpool {
  private readonly entries: Entry[] = [];
  private readonly bySeq = new Map<number, Entry>();
  private readonly acked = new Set<number>();
  private readonly segments = new Map<number, Segment>();
  private current = 0;
  private unacked = 0;
  /** Bytes of the frames not acknowledged yet: the server's backlog for this execution. */
  private unackedFrameBytes = 0;
  private finishedMsg: Finished | undefined;
  /** The next append starts a new segment (the last one could not be written). */
  private rollOver = false;

  private constructor(
    readonly executionId: string,
    readonly dir: string,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  static create(stateDir: string, executionId: string): ExecutionSpool {
    return new ExecutionSpool(executionId, path.join(stateDir, 'spool', executionId));
  }

  /** Every spool left on disk by an earlier run of the runner. */
  static loadAll(stateDir: string): ExecutionSpool[] {
    const root = path.join(stateDir, 'spool');
    if (!fs.existsSync(root)) return [];
    return fs
      .readdirSync(root)
      .filter((id) => /^[0-9a-f-]{36}$/.test(id))
      .map((id) => {
        const spool = new ExecutionSpool(id, path.join(root, id));
        spool.reload();
        return spool;
      });
  }

  private segmentFile(n: number): string {
    return path.join(this.dir, `seg-${String(n).padStart(6, '0')}.bin`);
  }

  private reload(): void {
    const ackedFile = path.join(this.dir, 'acked');
    if (fs.existsSync(ackedFile)) for (const s of fs.readFileSync(ackedFile, 'utf8').split('\n')) if (s) this.acked.add(Number(s));
    const numbers = fs
      .readdirSync(this.dir)
      .map((f) => /^seg-(\d{6})\.bin$/.exec(f)?.[1])
      .filter((n): n is string => n !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
    for (const n of numbers) {
      // One segment at a time: a large leftover spool is never read into memory whole.
      const buf = fs.readFileSync(this.segmentFile(n));
      const segment: Segment = { fd: fs.openSync(this.segmentFile(n), 'r+'), size: 0, unacked: 0 };
      let offset = 0;
      while (offset + 4 <= buf.length) {
        const length = buf.readUInt32BE(offset);
        const frame = offset + 4 + length <= buf.length ? decodeOutputFrame(buf.subarray(offset + 4, offset + 4 + length)) : undefined;
        // A record cut short by a crash while it was written: it was never sent either.
        if (!frame) break;
        const seq = (frame.header as Output).seq;
        const entry = { seq, segment: n, offset: offset + 4, length };
        this.entries.push(entry);
        this.bySeq.set(seq, entry);
        if (!this.acked.has(seq)) {
          segment.unacked++;
          this.unackedFrameBytes += length;
        }
        offset += 4 + length;
      }
      segment.size = offset;
      this.segments.set(n, segment);
      this.unacked += segment.unacked;
      this.current = n;
    }
    const finishedFile = path.join(this.dir, 'finished.json');
    if (fs.existsSync(finishedFile)) this.finishedMsg = JSON.parse(fs.readFileSync(finishedFile, 'utf8')) as Finished;
  }

  /**
   * Writes the chunk and returns its frame, which the caller may send at once. When the disk
   * refuses (full, a file size limit), it throws and nothing is recorded; the caller tries
   * again later, and that try starts a new segment (what was half-written stays past the end
   * of the old one, where nothing reads it).
   */
  append(msg: Output): Buffer {
    const frame = encodeOutputFrame(msg);
    let segment = this.segments.get(this.current);
    if (!segment || segment.size >= SEGMENT_BYTES || this.rollOver) {
      this.rollOver = false;
      const previous = this.current;
      this.current++;
      // Acknowledged while it was being written: no later ack would free it.
      this.freeIfDone(previous);
      segment = { fd: fs.openSync(this.segmentFile(this.current), 'a+', 0o600), size: 0, unacked: 0 };
      this.segments.set(this.current, segment);
    }
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(frame.length, 0);
    try {
      writeFully(segment.fd, length, segment.size);
      writeFully(segment.fd, frame, segment.size + 4);
    } catch (err) {
      this.rollOver = true;
      throw err;
    }
    const entry = { seq: msg.seq, segment: this.current, offset: segment.size + 4, length: frame.length };
    this.entries.push(entry);
    this.bySeq.set(msg.seq, entry);
    segment.size += 4 + frame.length;
    segment.unacked++;
    this.unacked++;
    this.unackedFrameBytes += frame.length;
    return frame;
  }

  ack(seq: number): void {
    if (this.acked.has(seq)) return;
    const entry = this.bySeq.get(seq);
    if (!entry) return;
    this.acked.add(seq);
    try {
      fs.appendFileSync(path.join(this.dir, 'acked'), `${seq}\n`);
    } catch {
      // Not recorded on disk: after a restart this chunk is sent again, and the server, which
      // stores each chunk once, ignores it.
    }
    this.unacked--;
    this.unackedFrameBytes -= entry.length;
    const segment = this.segments.get(entry.segment);
    if (segment) segment.unacked--;
    this.freeIfDone(entry.segment);
  }

  /** Deletes segment `n` once nothing in it waits for an ack and it is no longer written to. */
  private freeIfDone(n: number): void {
    const segment = this.segments.get(n);
    if (!segment || segment.unacked > 0 || n === this.current) return;
    fs.closeSync(segment.fd);
    fs.rmSync(this.segmentFile(n), { force: true });
    this.segments.delete(n);
  }

  get count(): number {
    return this.entries.length;
  }

  isAcked(index: number): boolean {
    return this.acked.has(this.entries[index].seq);
  }

  /** The `output` frame at `index`, as sent; only asked for frames not acknowledged yet. */
  read(index: number): Buffer {
    const e = this.entries[index];
    const buf = Buffer.alloc(e.length);
    fs.readSync(this.segments.get(e.segment)!.fd, buf, 0, e.length, e.offset);
    return buf;
  }

  get unackedBytes(): number {
    return this.unackedFrameBytes;
  }

  allAcked(): boolean {
    return this.unacked === 0;
  }

  /** Records how the execution ended; false when only in memory (the disk refused it). */
  finish(msg: Finished): boolean {
    this.finishedMsg = msg;
    const file = path.join(this.dir, 'finished.json');
    try {
      fs.writeFileSync(file + '.tmp', JSON.stringify(msg), { mode: 0o600 });
      fs.renameSync(file + '.tmp', file);
      return true;
    } catch {
      return false;
    }
  }

  get finished(): Finished | undefined {
    return this.finishedMsg;
  }

  remove(): void {
    this.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  close(): void {
    for (const s of this.segments.values()) fs.closeSync(s.fd);
    this.segments.clear();
  }
}

/** writeSync may write less than asked (a disk filling up): write the rest, or throw. */
function writeFully(fd: number, buf: Buffer, position: number): void {
  let done = 0;
  while (done < buf.length) {
    const n = fs.writeSync(fd, buf, done, buf.length - done, position + done);
    if (n <= 0) throw Object.assign(new Error('the disk took no more bytes'), { code: 'ENOSPC' });
    done += n;
  }
}
