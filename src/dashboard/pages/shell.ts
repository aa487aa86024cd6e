/**
 * One shell (`#/shells/ID`): while it runs and it is yours, an interactive xterm.js terminal
 * attached over a WebSocket (keys, Ctrl-C, tab completion, colours and resizes go through;
 * a short drop reattaches), with "Make writable" (a reason and a confirmation; the server
 * decides), "Back to read-only" and "End". Otherwise its recording, replayed (shellReplay.ts).
 */
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import { h, replace } from '../dom.js';
import { duration, timeEl } from '../format.js';
import { href, type Route } from '../router.js';
import { may, signedInUser } from '../session.js';
import { MONO_FONT, THEMES } from '../terminal.js';
import { currentTheme, onThemeChange } from '../theme.js';
import { button, errorNotice, field, notice, pageTitle, setFieldError } from '../ui.js';
import type { ShellClientEvent } from '../../shared/shellProtocol.js';
import { attachUrl, shellApi, type ShellView } from './shellApi.js';
import { replayCard } from './shellReplay.js';

const REATTACH_FOR_MS = 50_000;

function facts(s: ShellView): HTMLElement {
  return h(
    'p',
    { class: 'muted small' },
    `${s.project} · opened by ${s.user} `,
    timeEl(s.opened_at),
    s.duration_ms !== null ? ` · ${duration(s.duration_ms)}` : '',
    s.end_reason ? ` · ended: ${s.end_reason}` : '',
    s.became_writable ? ' · ' : '',
    s.became_writable ? h('span', { class: 'badge badge-refused' }, 'became writable') : '',
  );
}

export async function shellPage(main: HTMLElement, route: Route): Promise<void> {
  const s = await shellApi.get(route.params.id, route.signal);
  const back = h('a', { href: href('/shells', { project: s.project }), class: 'button button-plain' }, 'All shells');
  if (!s.live || s.user_id !== signedInUser()?.id) {
    replace(main, pageTitle('Shell replay', back), facts(s), replayCard(s, route.signal));
    return;
  }
  liveShell(main, route, s, back);
}

function liveShell(main: HTMLElement, route: Route, s: ShellView, back: HTMLElement): void {
  const mode = h('span', { class: 'badge badge-ok', 'data-testid': 'shell-mode' }, 'read-only');
  const status = h('div', { 'aria-live': 'polite', class: 'shell-status' });
  const box = h('div', { class: 'terminal shell-terminal', 'data-testid': 'shell-terminal', style: 'height: 60vh' });
  const reason = h('textarea', { class: 'input', rows: 2, placeholder: 'What you will change and why' });
  const reasonField = field('Reason to make this shell writable', reason, { help: 'Recorded in the audit log and announced to the team.' });
  let ws: WebSocket | undefined;
  let ended = false;
  const send = (msg: object) => ws?.readyState === WebSocket.OPEN && ws.send(JSON.stringify(msg));
  const writable = button('Make writable', () => {
    setFieldError(reason, reasonField.error, null);
    const why = reason.value.trim();
    if (!why) return setFieldError(reason, reasonField.error, 'Give a reason.');
    if (!window.confirm(`Make this shell WRITABLE?\n\nReason: ${why}\n\nThis is recorded in the audit log and announced to the team.`)) return;
    send({ type: 'writable', reason: why });
  }, { kind: 'danger', testid: 'make-writable' });
  const readonly = button('Back to read-only', () => send({ type: 'readonly' }), { testid: 'make-readonly' });
  const end = button('End shell', () => send({ type: 'close' }), { testid: 'end-shell' });
  replace(
    main,
    pageTitle('Shell', mode, back),
    facts(s),
    box,
    status,
    // Making a shell writable is for project admins (the server decides too).
    h('section', { class: 'card' }, may(s.project, 'shell.write') ? reasonField.el : null, h('div', { class: 'card-actions' }, may(s.project, 'shell.write') ? [writable, readonly] : null, end)),
  );

  const term = new Terminal({ fontFamily: MONO_FONT, fontSize: 13, lineHeight: 1.2, scrollback: 5000, cursorBlink: true, theme: { ...THEMES[currentTheme()], cursor: THEMES[currentTheme()].foreground } });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(box);
  term.textarea?.setAttribute('aria-label', 'Django shell (Escape leaves the terminal)');
  // Escape leaves the terminal (no keyboard trap); every other key, Tab included, goes to the shell.
  term.attachCustomKeyEventHandler((e) => {
    if (e.key === 'Escape' && e.type === 'keydown') {
      term.blur();
      return false;
    }
    return true;
  });
  const stopTheme = onThemeChange((t) => (term.options.theme = { ...THEMES[t], cursor: THEMES[t].foreground }));
  const encoder = new TextEncoder();
  term.onData((d) => ws?.readyState === WebSocket.OPEN && ws.send(encoder.encode(d)));
  term.onBinary((d) => ws?.readyState === WebSocket.OPEN && ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))));
  term.onResize(({ cols, rows }) => send({ type: 'resize', cols, rows }));
  const observer = new ResizeObserver(() => {
    try {
      fit.fit();
    } catch {
      // not laid out yet
    }
  });
  observer.observe(box);
  (window as unknown as { dcShellTerminal?: Terminal }).dcShellTerminal = term;

  const setMode = (readOnly: boolean) => {
    mode.textContent = readOnly ? 'read-only' : 'WRITABLE';
    mode.className = `badge ${readOnly ? 'badge-ok' : 'badge-refused'}`;
  };
  let lostAt: number | undefined;
  /** Output bytes shown so far: a reattach asks for what follows them. */
  let received = 0;
  const connect = () => {
    if (route.signal.aborted || ended) return;
    const socket = new WebSocket(`${attachUrl(s.attach_path)}?from=${received}`);
    socket.binaryType = 'arraybuffer';
    ws = socket;
    socket.onopen = () => {
      lostAt = undefined;
      replace(status);
      send({ type: 'resize', cols: term.cols, rows: term.rows });
      term.focus();
    };
    socket.onmessage = (ev) => {
      if (ev.data instanceof ArrayBuffer) {
        received += ev.data.byteLength;
        return term.write(new Uint8Array(ev.data));
      }
      const msg = JSON.parse(String(ev.data)) as ShellClientEvent;
      if (msg.type === 'status') setMode(msg.read_only);
      else if (msg.type === 'notice') replace(status, notice('warning', msg.message, msg.code ? ` (${msg.code})` : ''));
      else if (msg.type === 'ended') {
        ended = true;
        replace(status, notice('info', `The shell ended: ${msg.reason}. `, h('a', { href: href(`/shells/${s.id}`) }, 'Replay it')));
      }
    };
    socket.onclose = (ev) => {
      if (ws !== socket || ended || route.signal.aborted) return;
      if (ev.code === 1000) {
        ended = true;
        return;
      }
      lostAt ??= Date.now();
      if (Date.now() - lostAt > REATTACH_FOR_MS) return replace(status, errorNotice(new Error('Lost the connection to the server; the shell ends there by itself.')));
      replace(status, notice('warning', 'Connection lost; reattaching…'));
      window.setTimeout(connect, 1000);
    };
  };
  connect();
  route.signal.addEventListener('abort', () => {
    // Leaving the page detaches; the shell stays open for the reattach period (come back to it).
    ws?.close(4000, 'page left');
    observer.disconnect();
    stopTheme();
    term.dispose();
  });
}
