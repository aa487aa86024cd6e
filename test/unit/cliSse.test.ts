/**
 * The CLI's readers of live output: Server-Sent Events (`run`, `logs --follow`) and JSON lines
 * (`logs`). A network read is 16–64 KiB while one event can be megabytes (a v1 chunk is stored in
 * 8 MiB parts): reading must cost time in proportion to the bytes, not to their square.
 */
import { describe, expect, it } from 'vitest';
import { parseSse, readLines, type SseEvent } from '../../src/cli/apiClient.js';

const MIB = 1024 * 1024;

/** A body that hands `text` over in reads of `readBytes`, as fetch does. */
function body(text: string | Buffer, readBytes: number): ReadableStream<Uint8Array> {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.subarray(at, at + readBytes));
      at += readBytes;
    },
  });
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** The events with their data as text, taken before the next one reuses the bytes. */
async function events(it: AsyncIterable<SseEvent>): Promise<Array<{ event: string; data: string; id: string | undefined }>> {
  const out = [];
  for await (const e of it) out.push({ event: e.event, data: e.data.toString('utf8'), id: e.id });
  return out;
}

describe('parseSse', () => {
  it('reads a 50 MB event split in 64 KiB reads in bounded time, whole', async () => {
    const line = 'é'.repeat(40) + 'x'.repeat(59) + '\n'; // 2-byte characters cut across reads too
    const text = line.repeat(Math.ceil((50 * MIB) / Buffer.byteLength(line)));
    const data = JSON.stringify({ seq: 7, stream: 'stdout', data: text, line_times: [] });
    const stream = body(`: ping\n\nid: 7\nevent: output\ndata: ${data}\n\nevent: end\ndata: {"status":"succeeded"}\n\n`, 64 * 1024);
    const started = performance.now();
    const read = await events(parseSse(stream));
    const ms = performance.now() - started;
    expect(read.map((e) => [e.event, e.id])).toEqual([
      ['output', '7'],
      ['end', undefined],
    ]);
    expect(read[0].data.length).toBe(data.length);
    expect((JSON.parse(read[0].data) as { data: string }).data === text).toBe(true);
    // Linear: ~0.1–0.5 s here. Scanning the whole buffer again on every read takes minutes.
    expect(ms).toBeLessThan(5_000);
  });

  it('keeps fields, multi-line data, CRLF and comments as the spec says, however the bytes are cut', async () => {
    const text = 'id: 1\r\nevent: status\r\ndata: {"a":\r\ndata: 1}\r\n\r\n: comment\n\ndata:no space\n\nevent: x\nid: 2\n\n';
    for (const readBytes of [1, 2, 3, 7, 64]) {
      expect(await events(parseSse(body(text, readBytes)))).toEqual([
        { event: 'status', data: '{"a":\n1}', id: '1' },
        { event: 'message', data: 'no space', id: undefined },
      ]);
    }
  });
});

describe('readLines', () => {
  it('reads a 50 MB JSON line in 64 KiB reads in bounded time, and a last line without a newline', async () => {
    const big = JSON.stringify({ seq: 1, stream: 'stderr', data: 'y'.repeat(50 * MIB), line_times: [] });
    const text = `{"seq":0}\r\n${big}\n\n{"last":true}`;
    const started = performance.now();
    const lines = await all(readLines(body(text, 64 * 1024)));
    const ms = performance.now() - started;
    expect(lines.length).toBe(4);
    expect(lines[0]).toBe('{"seq":0}');
    expect(lines[1] === big).toBe(true);
    expect(lines.slice(2)).toEqual(['', '{"last":true}']);
    expect(ms).toBeLessThan(5_000);
  });
});
