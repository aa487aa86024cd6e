/**
 * The spool: every output chunk and the ending of an execution, written to the runner's disk
 * before it is sent, and kept until the server acknowledges it. After a server restart, a cut
 * network or a runner restart, what was not acknowledged is sent again; the server stores each
 * (execution, seq) once, so nothing is lost and nothing is duplicated.
 *
 * One folder per execution under <state>/spool/<id>/:
 *   chunks.bin     the binary `output` frames, each after its u32 length, in seq order
 *   acked          one acknowledged seq per line
 *   finished.json  the `finished` message, once the process ended
 * Only offsets stay in memory, so a huge output costs disk, not memory.
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeOutputFrame, encodeOutputFrame, type Finished, type Output } from '../shared/protocolV2.js';

interface Entry {
  seq: number;
  offset: number;
  length: number;
}

export class ExecutionSpool {
  private readonly entries: Entry[] = [];
  private readonly acked = new Set<number>();
  private fd: number;
  private size = 0;
  private finishedMsg: Finished | undefined;

  private constructor(
    readonly executionId: string,
    readonly dir: string,
  ) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.fd = fs.openSync(path.join(dir, 'chunks.bin'), 'a+', 0o600);
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

  private reload(): void {
    const buf = fs.readFileSync(path.join(this.dir, 'chunks.bin'));
    let offset = 0;
    while (offset + 4 <= buf.length) {
      const length = buf.readUInt32BE(offset);
      const frame = offset + 4 + length <= buf.length ? decodeOutputFrame(buf.subarray(offset + 4, offset + 4 + length)) : undefined;
      // A record cut short by a crash while it was written: it was never sent either.
      if (!frame) break;
      this.entries.push({ seq: (frame.header as Output).seq, offset: offset + 4, length });
      offset += 4 + length;
    }
    this.size = offset;
    const ackedFile = path.join(this.dir, 'acked');
    if (fs.existsSync(ackedFile)) for (const s of fs.readFileSync(ackedFile, 'utf8').split('\n')) if (s) this.acked.add(Number(s));
    const finishedFile = path.join(this.dir, 'finished.json');
    if (fs.existsSync(finishedFile)) this.finishedMsg = JSON.parse(fs.readFileSync(finishedFile, 'utf8')) as Finished;
  }

  get lastSeq(): number {
    return this.entries.length === 0 ? 0 : this.entries[this.entries.length - 1].seq;
  }

  /** Writes the chunk and returns its frame, which the caller may send at once. */
  append(msg: Output): Buffer {
    const frame = encodeOutputFrame(msg);
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(frame.length, 0);
    fs.writeSync(this.fd, length, 0, 4, this.size);
    fs.writeSync(this.fd, frame, 0, frame.length, this.size + 4);
    this.entries.push({ seq: msg.seq, offset: this.size + 4, length: frame.length });
    this.size += 4 + frame.length;
    return frame;
  }

  ack(seq: number): void {
    if (this.acked.has(seq)) return;
    this.acked.add(seq);
    fs.appendFileSync(path.join(this.dir, 'acked'), `${seq}\n`);
  }

  /** The seqs not acknowledged yet, in order, from index `from` of the entries. */
  pendingFrom(from: number): { index: number; seq: number }[] {
    const out: { index: number; seq: number }[] = [];
    for (let i = from; i < this.entries.length; i++) if (!this.acked.has(this.entries[i].seq)) out.push({ index: i, seq: this.entries[i].seq });
    return out;
  }

  get count(): number {
    return this.entries.length;
  }

  isAcked(index: number): boolean {
    return this.acked.has(this.entries[index].seq);
  }

  /** The `output` frame at `index`, as sent. */
  read(index: number): Buffer {
    const e = this.entries[index];
    const buf = Buffer.alloc(e.length);
    fs.readSync(this.fd, buf, 0, e.length, e.offset);
    return buf;
  }

  allAcked(): boolean {
    return this.entries.every((e) => this.acked.has(e.seq));
  }

  finish(msg: Finished): void {
    this.finishedMsg = msg;
    const file = path.join(this.dir, 'finished.json');
    fs.writeFileSync(file + '.tmp', JSON.stringify(msg), { mode: 0o600 });
    fs.renameSync(file + '.tmp', file);
  }

  get finished(): Finished | undefined {
    return this.finishedMsg;
  }

  remove(): void {
    fs.closeSync(this.fd);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}
