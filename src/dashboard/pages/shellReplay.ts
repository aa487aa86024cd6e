/**
 * A shell's recording replayed with asciinema-player, at any speed (its asciicast v2 comes from
 * GET /api/v1/shells/:id/recording with the session cookie), with a download of the .cast file.
 * Markers ("writable: reason", "read-only") are the player's own markers: jump between them.
 */
import * as AsciinemaPlayer from 'asciinema-player';
import 'asciinema-player/dist/bundle/asciinema-player.css';
import { h } from '../dom.js';
import { MONO_FONT } from '../terminal.js';
import type { ShellView } from './shellApi.js';

const SPEEDS = [0.5, 1, 2, 4, 8, 16];

export function replayCard(s: ShellView, signal: AbortSignal): HTMLElement {
  const holder = h('div', { class: 'shell-replay', 'data-testid': 'shell-replay' });
  const speed = h('select', { class: 'input', 'aria-label': 'Replay speed', 'data-testid': 'replay-speed' }, SPEEDS.map((v) => h('option', { value: String(v), selected: v === 1 }, `${v}×`)));
  let player: AsciinemaPlayer.Player | undefined;
  const mount = () => {
    player?.dispose();
    holder.replaceChildren();
    player = AsciinemaPlayer.create({ url: s.recording_path, fetchOpts: { credentials: 'same-origin' } }, holder, {
      speed: Number(speed.value),
      idleTimeLimit: 2,
      fit: 'width',
      terminalFontFamily: MONO_FONT,
      controls: true,
    });
    (window as unknown as { dcReplayPlayer?: AsciinemaPlayer.Player }).dcReplayPlayer = player;
  };
  speed.addEventListener('change', mount);
  signal.addEventListener('abort', () => player?.dispose());
  const card = h(
    'section',
    { class: 'card' },
    h('div', { class: 'card-actions' }, h('label', null, 'Speed ', speed), h('a', { class: 'button', href: s.recording_path, download: `shell-${s.id}.cast` }, 'Download recording (.cast)')),
    holder,
  );
  queueMicrotask(mount);
  return card;
}
