/**
 * The run view: the output live in a terminal (Server-Sent Events, resumed where it stopped
 * after a network blip), status, exit code, duration, who started it; Cancel and Force kill
 * while it runs; the full output as a download. A huge output shows only its tail, with
 * earlier parts on request.
 */
import type { ExecutionView, OutputChunkView } from '../../shared/api.js';
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { bytes, commandLine, elapsed, isEnded, statusBadge, timeEl } from '../format.js';
import { readBackwards, TAIL_BUDGET_CHARS, TAIL_THRESHOLD_BYTES } from '../outputTail.js';
import { commandPath, href, projectPath, type Route } from '../router.js';
import { OutputTerminal, stripAnsi } from '../terminal.js';
import { errorMessage, errorNotice, every, loading, notice, pageTitle } from '../ui.js';
import { may } from '../session.js';
import { readOnlyBadge } from '../readOnly.js';
import { approvalPanel } from '../approvalPanel.js';

const RECONNECT_MS = 2000;
/** Lines of a huge output's tail that go into the terminal (its scroll-back is 10 000). */
const TAIL_MAX_LINES = 9000;

/** Keeps the last `max` lines of `chunks` for the terminal; the text before them is `carry`. */
function keepLastLines(chunks: OutputChunkView[], max: number): { shown: OutputChunkView[]; carry: string } {
  let lines = 0;
  for (let i = chunks.length - 1; i >= 0; i--) {
    const data = chunks[i].data;
    let cut = data.length;
    while (cut > 0) {
      const nl = data.lastIndexOf('\n', cut - 1);
      if (nl < 0) break;
      lines++;
      if (lines > max) {
        const carry = chunks.slice(0, i).map((c) => c.data).join('') + data.slice(0, nl + 1);
        return { shown: [{ ...chunks[i], data: data.slice(nl + 1) }, ...chunks.slice(i + 1)], carry };
      }
      cut = nl;
    }
  }
  return { shown: chunks, carry: '' };
}

function metaItem(term: string, value: Node | string, testid?: string, wide = false): HTMLElement {
  return h('div', { class: wide ? 'meta-wide' : null }, h('dt', null, term), h('dd', { 'data-testid': testid }, value));
}

export async function runPage(main: HTMLElement, route: Route): Promise<void> {
  const { id } = route.params;
  replace(main, loading());
  let e = await api.execution(id, route.signal);

  const title = pageTitle(e.command);
  const badgeSlot = h('span', { class: 'title-status', 'data-testid': 'status' });
  title.querySelector('h1')!.append(' ', badgeSlot);
  const meta = h('dl', { class: 'meta' });
  const reason = h('div', { 'aria-live': 'polite' });
  const actionError = h('div', { 'aria-live': 'assertive' });
  const live = h('span', { class: 'live muted small', 'aria-live': 'polite', 'data-testid': 'live-state' });
  // Four-eyes: Approve / Deny while it waits for approval (approvalPanel.ts).
  const approvalSlot = h('div');

  const cancel = h('button', { type: 'button', class: 'button', 'data-testid': 'cancel' }, 'Cancel');
  const kill = h('button', { type: 'button', class: 'button button-danger', 'data-testid': 'force-kill', title: 'Kill the process at once (SIGKILL), without a grace period' }, 'Force kill');
  const download = h('a', { class: 'button', href: api.outputUrl(id), download: `${e.command}-${e.id}.log`, 'data-testid': 'download' }, 'Download full output');
  const again = h('a', { class: 'button button-plain', href: href(commandPath(e.project, e.command), { args: e.args, ...(e.read_only ? { read_only: '1' } : {}) }) }, 'Run again…');

  const earlierBox = h('div', { class: 'earlier', hidden: true });
  const earlierText = h('pre', { class: 'earlier-text mono', tabindex: '0', 'aria-label': 'Earlier output' });
  const earlierButton = h('button', { type: 'button', class: 'button button-small' }, 'Load earlier output');
  const termBox = h('div', { class: 'output-terminal', 'data-testid': 'terminal' });
  const follow = h('button', { type: 'button', class: 'button button-small button-plain', title: 'Scroll to the newest output' }, 'Jump to end ↓');

  replace(
    main,
    h('p', { class: 'crumbs muted small' }, h('a', { href: '#/' }, 'Projects'), ' / ', h('a', { href: href(projectPath(e.project)) }, e.project), ' / ', h('a', { href: href('/history', { project: e.project, command: e.command }) }, e.command)),
    title,
    h('p', { class: 'mono command-line' }, `manage.py ${commandLine(e)}`),
    // A viewer sees and downloads; cancelling and running again need an operator (the server decides too).
    h('div', { class: 'run-actions' }, may(e.project, 'cancel') ? [cancel, kill] : null, download, may(e.project, 'run') ? again : null),
    actionError,
    approvalSlot,
    reason,
    meta,
    earlierBox,
    h('div', { class: 'terminal-head' }, h('span', { class: 'small muted' }, 'Output'), live, follow),
    termBox,
  );

  const terminal = new OutputTerminal(termBox);
  route.signal.addEventListener('abort', () => terminal.dispose());
  follow.addEventListener('click', () => terminal.scrollToBottom());
  // The page exposes its terminal to tests and to the console, read-only.
  (window as unknown as { dcTerminal?: () => string }).dcTerminal = () => terminal.text();

  const paint = () => {
    document.title = `${e.command} · ${e.status.replace('_', ' ')} · djangocommand`;
    replace(badgeSlot, statusBadge(e.status, e.cancel_requested), e.read_only ? [' ', readOnlyBadge()] : null);
    const ended = isEnded(e);
    replace(
      meta,
      metaItem('Project', h('a', { href: href(projectPath(e.project)) }, e.project)),
      metaItem('Started by', e.schedule_id ? h('a', { href: href(`/schedules/${e.schedule_id}`) }, e.created_by) : e.created_by, 'created-by', true),
      metaItem('Created', timeEl(e.created_at)),
      metaItem('Started', timeEl(e.started_at)),
      metaItem('Finished', timeEl(e.finished_at)),
      metaItem('Duration', elapsed(e), 'duration'),
      metaItem('Exit code', e.exit_code === null ? '—' : String(e.exit_code), 'exit-code'),
      metaItem('Output', bytes(e.output_bytes)),
      metaItem('Timeout', `${e.timeout} s`),
    );
    replace(
      reason,
      e.status_reason ? notice(e.status === 'succeeded' ? 'info' : ended ? 'warning' : 'info', e.status_reason) : '',
      e.output_incomplete
        ? h('div', { 'data-testid': 'output-incomplete' }, notice('warning', `The output is incomplete: ${e.output_missing_chunks} chunk(s) never reached the server (the runner could not send them). What is shown and downloaded is not everything the command printed.`))
        : '',
      e.late_status
        ? notice('info', `Its runner reported later that the command ended ${e.late_status.replace('_', ' ')}${e.late_exit_code === null ? '' : ` with exit code ${e.late_exit_code}`}; it stays lost, and was not re-run.`)
        : '',
    );
    cancel.disabled = ended || e.cancel_requested;
    cancel.textContent = e.cancel_requested && !ended ? 'Cancelling…' : 'Cancel';
    kill.disabled = ended;
    if (e.status !== 'awaiting_approval') approvalSlot.replaceChildren();
    else if (!approvalSlot.firstChild) approvalSlot.replaceChildren(approvalPanel(id, route.signal, (decided) => ((e = decided), paint())));
  };
  paint();
  // The Python runner (protocol v1) sends output as the command printed it: nothing is scrubbed.
  if (e.runner_id) {
    const runnerId = e.runner_id;
    void api.runners(e.project, route.signal).then((r) => {
      if (r.items.find((x) => x.id === runnerId)?.protocol !== 'v1') return;
      reason.after(h('div', { 'data-testid': 'output-unscrubbed' }, notice('warning', 'This ran on a Python runner (protocol v1), which does not scrub secrets from output on the host: secret setting values the command printed are stored as printed.')));
    }, () => undefined);
  }
  // While it runs, only the duration ticks (the rest stays put, and so does the focus).
  every(1000, route.signal, () => {
    const d = meta.querySelector('[data-testid="duration"]');
    if (!isEnded(e) && d) d.textContent = elapsed(e);
  });

  const act = async (force: boolean) => {
    if (force && !window.confirm(`Kill ${e.command} at once? It gets no chance to clean up.`)) return;
    actionError.replaceChildren();
    cancel.disabled = true;
    kill.disabled = true;
    try {
      e = await api.cancel(id, force);
    } catch (err) {
      actionError.replaceChildren(errorNotice(err));
    }
    paint();
  };
  cancel.addEventListener('click', () => void act(false));
  kill.addEventListener('click', () => void act(true));

  // Where the live stream starts: from the beginning, or from the tail of a huge output.
  let seq = 0;
  if (e.output_bytes > TAIL_THRESHOLD_BYTES) {
    live.textContent = 'Reading the end of a large output…';
    const tail = await readBackwards(id, e.output_last_seq, TAIL_BUDGET_CHARS, route.signal);
    // The terminal keeps 10 000 lines: what would scroll out of it waits for "Load earlier".
    const { shown, carry } = keepLastLines(tail.chunks, TAIL_MAX_LINES);
    let before = tail.before;
    let pending = carry;
    if (before > 0 || pending) {
      terminal.writeNote(`… ${bytes(e.output_bytes)} of output: showing the end. "Load earlier output" above shows more; the download has it all.`);
      earlierBox.hidden = false;
      replace(earlierBox, h('div', { class: 'earlier-head' }, earlierButton, h('span', { class: 'muted small' }, 'Earlier parts show here as plain text.')), earlierText);
      earlierButton.addEventListener('click', async () => {
        earlierButton.disabled = true;
        try {
          let text = pending;
          pending = '';
          if (!text && before > 0) {
            const more = await readBackwards(id, before, TAIL_BUDGET_CHARS, route.signal);
            text = more.chunks.map((c) => c.data).join('');
            before = more.before;
          }
          earlierText.prepend(document.createTextNode(stripAnsi(text)));
          const done = before === 0 && !pending;
          earlierButton.disabled = done;
          if (done) earlierButton.textContent = 'This is the start of the output';
        } catch (err) {
          earlierButton.disabled = false;
          earlierBox.append(notice('error', errorMessage(err)));
        }
      });
    }
    for (const c of shown) terminal.write(c);
    seq = e.output_last_seq;
  }

  let source: EventSource | null = null;
  let retry: number | undefined;
  const connect = () => {
    source = new EventSource(api.eventsUrl(id, seq), { withCredentials: true });
    live.textContent = isEnded(e) ? '' : 'live';
    source.addEventListener('output', (ev) => {
      const chunk = JSON.parse((ev as MessageEvent<string>).data) as OutputChunkView;
      if (chunk.seq <= seq) return; // already shown (a resumed stream)
      seq = chunk.seq;
      terminal.write(chunk);
    });
    source.addEventListener('status', (ev) => {
      e = JSON.parse((ev as MessageEvent<string>).data) as ExecutionView;
      paint();
    });
    source.addEventListener('end', (ev) => {
      e = JSON.parse((ev as MessageEvent<string>).data) as ExecutionView;
      paint();
      source?.close();
      live.textContent = terminal.written === 0 ? 'ended · no output' : 'ended';
    });
    source.addEventListener('revoked', () => {
      // Signed out elsewhere, or the session expired: the stream ended for good.
      source?.close();
      live.textContent = 'signed out';
      actionError.replaceChildren(notice('error', 'Your session ended (signed out or revoked). Sign in again to follow this run.'));
    });
    source.addEventListener('open', () => {
      if (!isEnded(e)) live.textContent = 'live';
    });
    source.addEventListener('error', () => {
      if (route.signal.aborted || source?.readyState === EventSource.OPEN) return;
      if (source?.readyState === EventSource.CONNECTING) {
        live.textContent = 'reconnecting…';
        return;
      }
      // Closed for good (an HTTP error): check the session and the execution, then resume.
      live.textContent = 'disconnected, retrying…';
      retry = window.setTimeout(async () => {
        try {
          e = await api.execution(id, route.signal);
          paint();
          connect();
        } catch {
          if (!route.signal.aborted) retry = window.setTimeout(connect, RECONNECT_MS);
        }
      }, RECONNECT_MS);
    });
  };
  connect();
  route.signal.addEventListener('abort', () => {
    source?.close();
    window.clearTimeout(retry);
  });
}
