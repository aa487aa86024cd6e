/**
 * Shell data frames on the runner's v2 socket (see shellProtocol.ts): [u32 big-endian header
 * length][header JSON {"type":"shell_data","session_id"}][the terminal bytes, untouched].
 */
import { SHELL_DATA } from './shellProtocol.js';

const HEADER_PREFIX = Buffer.from(`{"type":"${SHELL_DATA}"`);

export function encodeShellFrame(sessionId: string, data: Uint8Array): Buffer {
  const head = Buffer.from(JSON.stringify({ type: SHELL_DATA, session_id: sessionId }), 'utf8');
  const frame = Buffer.allocUnsafe(4 + head.length + data.length);
  frame.writeUInt32BE(head.length, 0);
  head.copy(frame, 4);
  frame.set(data, 4 + head.length);
  return frame;
}

/** True for a shell data frame (checked by its first bytes; its header is validated when decoded). */
export function isShellFrame(frame: Buffer): boolean {
  return frame.length >= 4 + HEADER_PREFIX.length && frame.subarray(4, 4 + HEADER_PREFIX.length).equals(HEADER_PREFIX);
}

/** The header (parsed, not yet validated) and the bytes, untouched (a character may be split across frames). */
export function decodeShellFrame(frame: Buffer): { header: unknown; data: Buffer } | undefined {
  if (frame.length < 4) return undefined;
  const length = frame.readUInt32BE(0);
  if (length > 1000 || 4 + length > frame.length) return undefined;
  try {
    return { header: JSON.parse(frame.toString('utf8', 4, 4 + length)), data: frame.subarray(4 + length) };
  } catch {
    return undefined;
  }
}
