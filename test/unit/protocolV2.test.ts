/** Output frames: what the runner encodes, the server decodes, bytes for bytes. */
import { describe, expect, it } from 'vitest';
import { decodeOutputFrame, encodeOutputFrame } from '../../src/shared/protocolV2.js';

const ID = '8f2b1c3e-0c43-4d58-9d0a-6a1f3e2b7c11';
const msg = { type: 'output' as const, execution_id: ID, seq: 3, stream: 'stderr' as const, data: 'ünïcode ✓\n\x1b[31mred\x1b[0m\n', line_times: [[0, 5], [10, 6]] as Array<[number, number]> };

describe('output frames', () => {
  it('carry the header and the UTF-8 bytes of the data unchanged', () => {
    const frame = decodeOutputFrame(encodeOutputFrame(msg));
    const { data, ...header } = msg;
    expect(frame?.header).toEqual(header);
    expect(Buffer.compare(frame!.data, Buffer.from(data, 'utf8'))).toBe(0);
  });

  it('replace bytes that are not UTF-8, so stored output is always text', () => {
    const good = encodeOutputFrame({ ...msg, data: 'ab' });
    const bad = Buffer.concat([good, Buffer.from([0xff, 0x63])]);
    expect(decodeOutputFrame(bad)?.data.toString()).toBe('ab\ufffdc');
  });

  it('refuse a frame cut short or with a header that is not JSON', () => {
    const frame = encodeOutputFrame(msg);
    expect(decodeOutputFrame(frame.subarray(0, 3))).toBeUndefined();
    expect(decodeOutputFrame(frame.subarray(0, 10))).toBeUndefined();
    const notJson = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('{x')]);
    expect(decodeOutputFrame(notJson)).toBeUndefined();
  });
});
