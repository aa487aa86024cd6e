/** Pieces the schedule pages share: result badges, the strip of last results, the runs table with daylight-saving days marked. */
import type { OccurrenceView, PreviewRunView } from '../../shared/schedulesApi.js';
import { h } from '../dom.js';
import { statusBadge } from '../format.js';
import { executionPath, href } from '../router.js';
import './schedules.css';

const OUTCOME_LABEL: Record<string, string> = { skipped: 'skipped', missed: 'missed', refused: 'refused', waiting: 'waiting', pending: 'starting' };

/** The execution's status when one started, else why none did. */
export function resultBadge(o: Pick<OccurrenceView, 'result' | 'outcome' | 'count'>): HTMLElement {
  if (o.outcome === 'started') return statusBadge(o.result);
  return h('span', { class: `badge occurrence-${o.outcome}`, 'data-status': o.outcome }, `${OUTCOME_LABEL[o.outcome] ?? o.outcome}${o.count > 1 ? ` ×${o.count}` : ''}`);
}

/** The last results, oldest on the left: one square each, its words on hover and for screen readers. */
export function resultStrip(recent: OccurrenceView[]): HTMLElement {
  const items = [...recent].reverse();
  const label = items.length === 0 ? 'No runs yet' : `Last ${items.length} results, oldest first: ${items.map((o) => o.result).join(', ')}`;
  return h(
    'span',
    { class: 'result-strip', role: 'img', 'aria-label': label, 'data-testid': 'result-strip' },
    items.map((o) => h('span', { class: `strip-cell strip-${o.outcome === 'started' ? o.result : o.outcome}`, title: `${new Date(o.due_at).toLocaleString()}: ${o.result}${o.reason ? ` — ${o.reason}` : ''}` })),
    items.length === 0 ? h('span', { class: 'muted small' }, 'no runs yet') : null,
  );
}

export const viewerZone = (): string => Intl.DateTimeFormat().resolvedOptions().timeZone;

function inViewerZone(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' });
}

/** Next runs: in the schedule's zone, in UTC and in the viewer's zone; a clock-change day says what happens. */
export function runsTable(runs: PreviewRunView[], zone: string): HTMLElement {
  if (runs.length === 0) return h('p', { class: 'muted' }, 'It never runs.');
  return h(
    'table',
    { class: 'table runs-table', 'data-testid': 'preview-runs' },
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, zone), h('th', { scope: 'col' }, 'UTC'), h('th', { scope: 'col' }, `Your time (${viewerZone()})`))),
    h(
      'tbody',
      null,
      runs.map((r) =>
        h(
          'tr',
          { class: r.dst ? 'dst-day' : null, 'data-dst': r.dst?.kind ?? null },
          h(
            'td',
            null,
            h('span', { class: 'mono' }, `${r.weekday} ${r.local}`),
            ' ',
            h('span', { class: 'muted small' }, r.offset),
            r.dst
              ? h('div', { class: 'dst-note small', 'data-testid': 'dst-note' }, h('span', { class: 'badge badge-dst' }, r.dst.kind === 'spring_forward' ? 'clocks go forward' : 'clocks go back'), ' ', r.dst.note)
              : null,
          ),
          h('td', { class: 'mono' }, r.at.replace('T', ' ').slice(0, 16)),
          h('td', null, inViewerZone(r.at)),
        ),
      ),
    ),
  );
}

export function executionLink(o: OccurrenceView): HTMLElement | string {
  return o.execution_id ? h('a', { href: href(executionPath(o.execution_id)), class: 'mono small' }, o.execution_id.slice(0, 8)) : '';
}
