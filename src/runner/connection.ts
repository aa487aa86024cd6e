/**
 * The runner's one outbound WebSocket to the server (protocol v2), kept open: it reconnects
 * with exponential backoff and jitter after a drop, and waits much longer (the Python runner's
 * 1 s … 5 min schedule) when the server refused the key, so a wrong key does not hammer it.
 */
import { EventEmitter } from 'node:events';
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import { V2_PATH, type ServerMessage } from '../shared/protocolV2.js';

export type ConnectionState = 'connecting' | 'connected' | 'disconnected' | 'unauthorized' | 'stopped';

export interface ConnectionEvents {
  open: [];
  message: [ServerMessage];
  state: [ConnectionState, string | undefined];
}

const AUTH_BACKOFF_S = [1, 2, 5, 10, 30, 120, 300];
const MAX_BACKOFF_MS = 30_000;
/** No ping from the server for this long: the connection is dead even if TCP has not noticed. */
const SILENCE_MS = 35_000;

/** How long a stopping runner waits for the server to answer its close frame. */
const CLOSE_WAIT_MS = 2000;

export class Connection extends EventEmitter<ConnectionEvents> {
  state: ConnectionState = 'disconnected';
  lastError: string | undefined;
  /** The server refused the key on the last attempt (HTTP 401/403, close 4401), in its words. */
  refusal: { message: string; code: string | undefined } | undefined;
  private ws: WebSocket | undefined;
  private attempt = 0;
  private authFailures = 0;
  private timer: NodeJS.Timeout | undefined;
  private silence: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly serverUrl: string,
    private readonly apiKey: string,
    private readonly opts: { handshakeTimeoutMs: number; baseBackoffMs?: number; userAgent: string },
  ) {
    super();
  }

  start(): void {
    this.stopped = false;
    this.connect();
  }

  isOpen(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /** Sends a text (JSON) or binary (output) frame; false when not connected (the spool keeps what matters). */
  send(message: string | Buffer): boolean {
    if (!this.isOpen()) return false;
    this.ws!.send(message);
    return true;
  }

  /** Bytes handed to the socket but not yet written to the network. */
  buffered(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /** Drops the connection (tests cut the network this way too); it reconnects by itself. */
  drop(): void {
    this.ws?.terminate();
  }

  /**
   * Closes with a normal close (1000, "runner stopping"), after everything sent before, and
   * resolves once the server answered the close (or after CLOSE_WAIT_MS), so the close frame
   * is on the wire before the process exits: the server then knows at once that it is gone.
   */
  stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.silence);
    const ws = this.ws;
    this.setState('stopped', undefined);
    if (!ws || ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        ws.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
      ws.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      ws.close(1000, 'runner stopping');
    });
  }

  private setState(state: ConnectionState, detail: string | undefined): void {
    this.state = state;
    if (detail) this.lastError = detail;
    this.emit('state', state, detail);
  }

  private connect(): void {
    if (this.stopped) return;
    this.setState('connecting', undefined);
    const url = this.serverUrl.replace(/^http/, 'ws') + V2_PATH;
    const ws = new WebSocket(url, {
      handshakeTimeout: this.opts.handshakeTimeoutMs,
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      headers: {
        authorization: `Bearer ${this.apiKey}`,
        'x-request-timestamp': String(Math.floor(Date.now() / 1000)),
        'x-request-nonce': randomUUID(),
        'user-agent': this.opts.userAgent,
      },
    });
    this.ws = ws;
    let refused = false;
    /** The server answered the upgrade with an error: its words, not the socket's, are the reason. */
    let answered = false;
    ws.on('unexpected-response', (_req, res) => {
      answered = true;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d.slice(0, 2000)));
      res.on('end', () => {
        let message = `HTTP ${res.statusCode}`;
        let code: string | undefined;
        try {
          const parsed = JSON.parse(body) as { error?: string; code?: string };
          message = parsed.error ?? message;
          code = parsed.code;
        } catch {
          // not JSON: keep the status line
        }
        refused = res.statusCode === 401 || res.statusCode === 403;
        if (refused) this.refusal = { message, code };
        this.setState(refused ? 'unauthorized' : 'disconnected', message);
        ws.terminate();
      });
    });
    ws.on('open', () => {
      this.attempt = 0;
      this.authFailures = 0;
      this.lastError = undefined;
      this.refusal = undefined;
      this.setState('connected', undefined);
      this.watchSilence();
      this.emit('open');
    });
    ws.on('ping', () => this.watchSilence());
    ws.on('message', (data) => {
      this.watchSilence();
      let msg: ServerMessage;
      try {
        msg = JSON.parse(data.toString()) as ServerMessage;
      } catch {
        return;
      }
      this.emit('message', msg);
    });
    ws.on('error', (err) => {
      if (!answered) this.lastError = err.message;
    });
    ws.on('close', (code, reason) => {
      clearTimeout(this.silence);
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.stopped) return;
      if (code === 4401) {
        refused = true;
        this.refusal = { message: reason.toString() || 'the runner API key was refused', code: 'DC_UNAUTHENTICATED' };
      }
      if (reason.length > 0) this.lastError = reason.toString();
      if (!refused) this.setState('disconnected', this.lastError);
      else if (code === 4401) this.setState('unauthorized', this.lastError);
      this.scheduleReconnect(refused);
    });
  }

  private watchSilence(): void {
    clearTimeout(this.silence);
    this.silence = setTimeout(() => this.ws?.terminate(), SILENCE_MS);
  }

  private scheduleReconnect(refused: boolean): void {
    let delay: number;
    if (refused) {
      delay = AUTH_BACKOFF_S[Math.min(this.authFailures, AUTH_BACKOFF_S.length - 1)] * 1000;
      this.authFailures++;
    } else {
      const base = this.opts.baseBackoffMs ?? 250;
      delay = Math.min(MAX_BACKOFF_MS, base * 2 ** this.attempt);
      this.attempt++;
    }
    // Jitter spreads the reconnects of many runners after a server restart.
    delay = Math.round(delay * (0.5 + Math.random() * 0.5));
    this.timer = setTimeout(() => this.connect(), delay);
  }
}
