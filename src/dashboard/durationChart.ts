/**
 * Duration over time, one line per command, drawn as inline SVG: x is when it was created,
 * y how long it ran. A slow-down shows as a line going up. Failed runs are hollow red rings.
 */
import type { ExecutionView } from '../shared/api.js';
import { h, svg } from './dom.js';
import { duration } from './format.js';

const H = 240;
const M = { top: 12, right: 16, bottom: 30, left: 64 };
const MAX_SERIES = 8;
const PALETTE = ['var(--series-1)', 'var(--series-2)', 'var(--series-3)', 'var(--series-4)', 'var(--series-5)', 'var(--series-6)', 'var(--series-7)', 'var(--series-8)'];

/** 1, 2, 5 × 10^n steps: about `count` ticks from 0 to max. */
function niceTicks(max: number, count = 4): number[] {
  if (max <= 0) return [0];
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) ?? raw;
  const ticks = [0];
  while (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function timeTicks(min: number, max: number, n: number): number[] {
  if (max <= min) return [min];
  return Array.from({ length: n }, (_, i) => min + ((max - min) * i) / (n - 1));
}

function timeLabel(ms: number, span: number): string {
  const d = new Date(ms);
  if (span < 3600_000) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (span < 36 * 3600_000) return d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  if (span < 90 * 86_400_000) return d.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short' });
}

/** `width`: the pixels available, so that text keeps its size whatever the screen. */
export function durationChart(items: ExecutionView[], multiProject: boolean, width = 760): HTMLElement {
  const W = Math.max(300, Math.round(width));
  const points = items
    .filter((e) => e.duration_ms !== null)
    .map((e) => ({ e, x: Date.parse(e.created_at), y: e.duration_ms!, key: multiProject ? `${e.project}/${e.command}` : e.command }));
  if (points.length < 2) {
    return h('p', { class: 'muted small chart-empty' }, 'The duration chart appears once at least two runs have finished.');
  }
  const bySeries = new Map<string, typeof points>();
  for (const p of points) {
    if (!bySeries.has(p.key)) bySeries.set(p.key, []);
    bySeries.get(p.key)!.push(p);
  }
  const series = [...bySeries.entries()].sort((a, b) => b[1].length - a[1].length).slice(0, MAX_SERIES);
  const shown = series.flatMap(([, ps]) => ps);
  const minX = Math.min(...shown.map((p) => p.x));
  const maxX = Math.max(...shown.map((p) => p.x));
  const yTicks = niceTicks(Math.max(...shown.map((p) => p.y)));
  const maxY = yTicks[yTicks.length - 1] || 1;
  const spanX = maxX - minX || 1;
  const px = (x: number) => M.left + ((x - minX) / spanX) * (W - M.left - M.right);
  const py = (y: number) => H - M.bottom - (y / maxY) * (H - M.top - M.bottom);

  const chart = svg(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'chart', role: 'img', 'aria-label': `Duration of ${series.map(([k]) => k).join(', ')} over time`, preserveAspectRatio: 'xMidYMid meet' },
    yTicks.map((t) => [
      svg('line', { x1: M.left, x2: W - M.right, y1: py(t), y2: py(t), class: 'grid' }),
      svg('text', { x: M.left - 8, y: py(t) + 4, class: 'axis-label', 'text-anchor': 'end' }, duration(Math.round(t))),
    ]),
    timeTicks(minX, maxX, W < 500 ? 3 : 5)
      .map((t) => ({ t, label: timeLabel(t, spanX) }))
      .filter((x, i, all) => i === 0 || x.label !== all[i - 1].label)
      .map(({ t, label }, i, all) =>
        svg('text', { x: px(t), y: H - 8, class: 'axis-label', 'text-anchor': all.length === 1 ? 'start' : i === 0 ? 'start' : i === all.length - 1 ? 'end' : 'middle' }, label),
      ),
    series.map(([key, ps], i) => {
      const sorted = [...ps].sort((a, b) => a.x - b.x);
      const colour = PALETTE[i % PALETTE.length];
      return svg(
        'g',
        { class: 'series', 'data-series': key, style: `--c: ${colour}` },
        sorted.length > 1 ? svg('polyline', { points: sorted.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(' '), class: 'series-line' }) : null,
        sorted.map((p) =>
          svg(
            'circle',
            { cx: px(p.x).toFixed(1), cy: py(p.y).toFixed(1), r: 3.5, class: p.e.status === 'succeeded' ? 'point' : 'point point-failed' },
            svg('title', null, `${key} · ${new Date(p.x).toLocaleString()} · ${duration(p.y)} · ${p.e.status}`),
          ),
        ),
      );
    }),
  );
  const legend = h(
    'ul',
    { class: 'legend' },
    series.map(([key, ps], i) => h('li', null, h('span', { class: 'swatch', style: `background: ${PALETTE[i % PALETTE.length]}`, 'aria-hidden': 'true' }), h('span', { class: 'mono' }, key), h('span', { class: 'muted' }, ` ${ps.length}`))),
    bySeries.size > MAX_SERIES ? h('li', { class: 'muted' }, `and ${bySeries.size - MAX_SERIES} more: filter by command to see one`) : null,
    points.some((p) => p.e.status !== 'succeeded') ? h('li', { class: 'muted' }, h('span', { class: 'ring', 'aria-hidden': 'true' }), 'did not succeed') : null,
  );
  return h('figure', { class: 'chart-figure' }, chart, h('figcaption', null, legend));
}
