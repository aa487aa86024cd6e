#!/usr/bin/env python3
"""Drive bootstrap.py's warm mode the way the TypeScript runner does, and compare with cold runs.

Executable documentation for the runner side of src/runner/python/bootstrap.py (read its
docstring for the protocol). What a runner does, step by step (see WarmProcess):

  1. spawn `python bootstrap.py warm SOCK` in the project folder, stdin a pipe it keeps
     open (closing it makes the warm process exit), stdout a pipe: read ONE line, the
     "ready" (or "error") event. stderr is the warm process's log.
  2. per run: mkfifo two FIFOs; open their read ends with O_RDONLY|O_NONBLOCK; connect to
     SOCK; send {"op": "run", ...}; read "started" (pid == process group), stream the
     FIFOs, read "exited". Signals go to the process group (kill(-pid)).
  3. "stale" -> run it cold, start a new warm process; "cold" -> run it cold.

Every case runs cold (`python manage.py CMD ARGS`, stdin /dev/null, its own session, the
same environment) and warm, and stdout, stderr and the exit code are compared byte for
byte (or by a rule, where timing decides the output: signals, database counters).

    /usr/bin/python3 test/python/warm_driver.py [--python PATH] [--bench N] [--buffered]
                                                [--fast-exit] [--keep] [--only NAME,...]

Prints a JSON summary on stdout; exits 1 on any mismatch. Standard library only.
"""
import argparse
import hashlib
import json
import os
import re
import selectors
import shutil
import signal
import socket
import sqlite3
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BOOTSTRAP = os.path.join(REPO, 'src', 'runner', 'python', 'bootstrap.py')
EXAMPLE = os.path.join(REPO, 'example')


class Result:
    def __init__(self):
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.exit_code = None
        self.pid = None
        self.event = None  # warm: the final event ("exited", "stale", "cold", "error")
        self.message = None  # warm: the final message
        self.first_byte_s = None  # seconds from start/send to the first stdout byte
        self.elapsed_s = None

    def summary(self):
        return {
            'exit_code': self.exit_code,
            'stdout_bytes': len(self.stdout),
            'stderr_bytes': len(self.stderr),
            'stdout_sha256': hashlib.sha256(bytes(self.stdout)).hexdigest()[:16],
            'stderr_head': bytes(self.stderr[:300]).decode('utf-8', 'replace'),
        }


def pump(streams, result, t0, on_output, done, timeout):
    """Read {fd: bytearray} until every fd reached EOF (or done() says stop).

    on_output(result) is called after each stdout chunk (signal tests kill from there).
    """
    sel = selectors.DefaultSelector()
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    open_fds = set(streams)
    deadline = time.monotonic() + timeout
    while open_fds and not done():
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError('output did not end within %ss' % timeout)
        for key, _ in sel.select(timeout=min(left, 0.5)):
            fd = key.fd
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(fd)
                open_fds.discard(fd)
                continue
            streams[fd].extend(chunk)
            if streams[fd] is result.stdout:
                if result.first_byte_s is None:
                    result.first_byte_s = time.monotonic() - t0
                if on_output:
                    on_output(result)
    sel.close()
    return open_fds


def run_cold(python, project, env, command, argv, on_output=None, timeout=120):
    """`python manage.py CMD ARGS` with stdin /dev/null, in its own session."""
    result = Result()
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [python, 'manage.py', command] + list(argv), cwd=project, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True,
    )
    result.pid = proc.pid
    streams = {proc.stdout.fileno(): result.stdout, proc.stderr.fileno(): result.stderr}
    pump(streams, result, t0, on_output, lambda: False, timeout)
    result.exit_code = proc.wait(timeout)
    result.elapsed_s = time.monotonic() - t0
    proc.stdout.close()
    proc.stderr.close()
    return result


class WarmProcess:
    def __init__(self, python, project, env, workdir, log_path, fast_exit=False):
        self.workdir = workdir
        self.fast_exit = fast_exit
        self.socket_path = os.path.join(workdir, 'warm-%d.sock' % int(time.time() * 1000))
        self.log = open(log_path, 'ab')
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [python, BOOTSTRAP, 'warm', self.socket_path], cwd=project, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
        )
        line = self.proc.stdout.readline()
        self.spawn_to_ready_s = time.monotonic() - t0
        if not line:
            raise RuntimeError('warm process exited before ready (see %s)' % log_path)
        self.ready = json.loads(line)
        if self.ready.get('event') != 'ready':
            raise RuntimeError('warm process failed: %s' % self.ready)
        self._counter = 0

    def request(self, message, timeout=10):
        """One request on a fresh connection; returns the first reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(self.socket_path)
            sock.sendall((json.dumps(message) + '\n').encode())
            return json.loads(sock.makefile('rb').readline())

    def run(self, command, argv, env=None, on_output=None, on_started=None, timeout=120, run_id=None):
        self._counter += 1
        run_id = run_id or 'run-%d' % self._counter
        result = Result()
        fifo_dir = tempfile.mkdtemp(prefix='fifo-', dir=self.workdir)
        out_path, err_path = os.path.join(fifo_dir, 'stdout'), os.path.join(fifo_dir, 'stderr')
        os.mkfifo(out_path, 0o600)
        os.mkfifo(err_path, 0o600)
        # Read ends first, non-blocking: the child's open() for writing waits for them.
        out_fd = os.open(out_path, os.O_RDONLY | os.O_NONBLOCK)
        err_fd = os.open(err_path, os.O_RDONLY | os.O_NONBLOCK)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.socket_path)
        events = []
        state = {'buf': b''}

        def read_events():
            # The control socket is read on its own thread here only to keep pump() simple.
            try:
                while True:
                    data = sock.recv(65536)
                    if not data:
                        break
                    state['buf'] += data
                    while b'\n' in state['buf']:
                        line, state['buf'] = state['buf'].split(b'\n', 1)
                        msg = json.loads(line)
                        events.append(msg)
                        if msg.get('event') == 'started':
                            result.pid = msg['pid']
                            if on_started:
                                on_started(result)
                        if msg.get('event') != 'started':
                            return
            except OSError:
                pass

        reader = threading.Thread(target=read_events, daemon=True)
        reader.start()
        message = {'op': 'run', 'id': run_id, 'command': command, 'argv': list(argv),
                   'stdout': out_path, 'stderr': err_path}
        if env:
            message['env'] = env
        if self.fast_exit:
            message['fast_exit'] = True
        t0 = time.monotonic()
        sock.sendall((json.dumps(message) + '\n').encode())

        def finished():
            return bool(events) and events[-1].get('event') in ('stale', 'cold', 'error')

        try:
            streams = {out_fd: result.stdout, err_fd: result.stderr}
            pump(streams, result, t0, on_output, finished, timeout)
            reader.join(timeout)
            result.elapsed_s = time.monotonic() - t0
            final = events[-1] if events else {'event': None}
            result.event, result.message = final.get('event'), final
            if final.get('event') == 'exited':
                result.exit_code = final['exit_code']
        finally:
            sock.close()
            os.close(out_fd)
            os.close(err_fd)
            shutil.rmtree(fifo_dir, ignore_errors=True)
        return result

    def close(self, timeout=10):
        """Close stdin: the warm process must exit by itself."""
        if self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        rest = self.proc.stdout.read().decode()
        self.proc.stdout.close()
        self.log.close()
        return code, rest


# ---------------------------------------------------------------- cases

def kill_group_on_output(sig, needle=b''):
    """on_output callback: signal the process group once stdout contains needle."""
    def callback(result):
        if not getattr(result, '_signalled', False) and needle in result.stdout and result.pid:
            result._signalled = True
            os.killpg(result.pid, sig)
    return callback


def exact(cold, warm):
    problems = []
    if cold.exit_code != warm.exit_code:
        problems.append('exit code cold %s warm %s' % (cold.exit_code, warm.exit_code))
    if bytes(cold.stdout) != bytes(warm.stdout):
        problems.append('stdout differs (cold %d bytes, warm %d bytes)' % (len(cold.stdout), len(warm.stdout)))
    if bytes(cold.stderr) != bytes(warm.stderr):
        problems.append('stderr differs:\n--- cold\n%s\n--- warm\n%s' % (
            bytes(cold.stderr[:2000]).decode('utf-8', 'replace'), bytes(warm.stderr[:2000]).decode('utf-8', 'replace')))
    return problems


def expect(code, stdout=None, stderr_re=None):
    """A rule for output that depends on timing: same exit code, stderr matching a pattern."""
    def check(cold, warm):
        problems = []
        for label, res in (('cold', cold), ('warm', warm)):
            if res.exit_code != code:
                problems.append('%s exit code %s, expected %s' % (label, res.exit_code, code))
            if stdout is not None and bytes(res.stdout) != stdout:
                problems.append('%s stdout %r' % (label, bytes(res.stdout[:200])))
            if stderr_re is not None and not re.fullmatch(stderr_re, bytes(res.stderr).decode('utf-8', 'replace')):
                problems.append('%s stderr %r' % (label, bytes(res.stderr[:300])))
        return problems
    return check


SLOW_STDERR = r'interrupted at step \d+ of 10\n'

CASES = [
    # name, command, argv, rule, extra run kwargs
    ('check', 'check', [], exact, {}),
    ('check --deploy', 'check', ['--deploy'], exact, {}),
    ('spew 50MB', 'spew', ['--bytes', '50000000'], exact, {}),
    ('spew + stderr', 'spew', ['--lines', '3000', '--stderr-every', '7'], exact, {}),
    ('spew CommandError', 'spew', ['--width', '5'], exact, {}),
    ('spew --traceback', 'spew', ['--width', '5', '--traceback'], exact, {}),
    ('colors', 'colors', [], exact, {}),
    ('colors --no-color', 'colors', ['--no-color'], exact, {}),
    ('colors --force-color', 'colors', ['--force-color'], exact, {}),
    ('fail --code 7', 'fail', ['--code', '7', '--after-lines', '3', '--message', 'bäd ✗'], exact, {}),
    ('fail --code 300', 'fail', ['--code', '300'], exact, {}),
    ('rich_args', 'rich_args', ['tgt', 'a', 'b c', '--count', '3', '--ratio', '0.5', '--mode', 'fast',
                                '--dry-run', '--tag', 'x', '--tag', 'ÿ', '--verbose-output'], exact, {}),
    ('rich_args usage error', 'rich_args', ['tgt', '--count', 'many'], exact, {}),
    ('rich_args exclusive', 'rich_args', ['tgt', '--verbose-output', '--quiet-output'], exact, {}),
    ('rich_args missing', 'rich_args', [], exact, {}),
    ('subcmds add', 'subcmds', ['add', 'foo'], exact, {}),
    ('subcmds remove', 'subcmds', ['remove', 'foo', '--force'], exact, {}),
    ('subcmds bad', 'subcmds', ['explode'], exact, {}),
    ('ask (no stdin)', 'ask', [], exact, {}),
    ('help spew', 'help', ['spew'], exact, {}),
    ('spew --help', 'spew', ['--help'], exact, {}),
    ('version', 'version', [], exact, {}),
    ('unknown command', 'no_such_command', [], exact, {}),
    ('showmigrations', 'showmigrations', [], exact, {}),
    ('migrate --plan', 'migrate', ['--plan'], exact, {}),
    ('diffsettings', 'diffsettings', [], exact, {}),
    ('slow SIGTERM', 'slow', ['--steps', '10', '--delay', '0.2'],
     expect(143, stderr_re=SLOW_STDERR), {'on_output': kill_group_on_output(signal.SIGTERM, b'[')}),
    ('slow SIGINT', 'slow', ['--steps', '10', '--delay', '0.2'],
     expect(130, stderr_re=SLOW_STDERR), {'on_output': kill_group_on_output(signal.SIGINT, b'[')}),
    ('sleep_forever SIGKILL', 'sleep_forever', [],
     expect(-9, stdout=b'sleeping\n', stderr_re=''), {'on_output': kill_group_on_output(signal.SIGKILL, b'sleeping')}),
    # Uncaught KeyboardInterrupt: Python prints the traceback and dies of SIGINT (-2).
    ('sleep_forever SIGINT', 'sleep_forever', [],
     expect(-2, stdout=b'sleeping\n', stderr_re=r'(?s)Traceback \(most recent call last\):\n  File "[^"]*manage\.py".*KeyboardInterrupt\n'),
     {'on_output': kill_group_on_output(signal.SIGINT, b'sleeping')}),
]


def note_count(db_path):
    with sqlite3.connect(db_path) as db:
        return db.execute('select count(*) from demo_note').fetchone()[0]


def compare_case(python, project, env, warm, name, command, argv, rule, kwargs):
    cold = run_cold(python, project, env, command, argv, **kwargs)
    hot = warm.run(command, argv, **kwargs)
    problems = [] if hot.event == 'exited' else ['warm run ended with %s' % hot.message]
    if not problems:
        problems = rule(cold, hot)
    return {
        'name': name, 'ok': not problems, 'problems': problems,
        'cold_ms': round(cold.elapsed_s * 1000, 1), 'warm_ms': round(hot.elapsed_s * 1000, 1),
        'cold': cold.summary(), 'warm': hot.summary(),
    }


def touch_note_case(python, project, env, warm, db_path):
    """The side effect must happen in both: each run adds one row and prints the count."""
    before = note_count(db_path)
    runs = [('cold', run_cold(python, project, env, 'touch_note', ['--text', 'from cold'])),
            ('warm', warm.run('touch_note', ['--text', 'from warm'])),
            ('cold', run_cold(python, project, env, 'touch_note', [])),
            ('warm', warm.run('touch_note', []))]
    problems = []
    for i, (label, res) in enumerate(runs, 1):
        if res.exit_code != 0 or bytes(res.stdout) != b'%d\n' % (before + i) or res.stderr:
            problems.append('%s run %d: exit %s stdout %r stderr %r' % (label, i, res.exit_code, bytes(res.stdout), bytes(res.stderr)))
    if note_count(db_path) != before + 4:
        problems.append('row count %d, expected %d' % (note_count(db_path), before + 4))
    with sqlite3.connect(db_path) as db:
        texts = [row[0] for row in db.execute('select text from demo_note order by id desc limit 4')]
    if texts != ['hello', 'hello', 'from warm', 'from cold']:
        problems.append('rows %r' % texts)
    return {'name': 'touch_note side effect', 'ok': not problems, 'problems': problems}


def concurrency_case(warm):
    """Several runs at once from one warm process: each gets its own events and output."""
    results = {}

    def one(i):
        results[i] = warm.run('spew', ['--lines', str(1000 * (i + 1)), '--stderr-every', '100'], run_id='par-%d' % i)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    problems = []
    for i in range(4):
        res = results.get(i)
        lines = 1000 * (i + 1)
        if res is None or res.exit_code != 0 or len(res.stdout) != 81 * lines or len(res.stderr) != 81 * (lines // 100):
            problems.append('run %d: %s' % (i, res.summary() if res else 'no result'))
    return {'name': 'concurrent runs', 'ok': not problems, 'problems': problems}


def protocol_cases(warm, project):
    """Messages other than a plain run: ping, bad requests, cold-only runs, signal op."""
    problems = []
    pong = warm.request({'op': 'ping', 'id': 'p1'})
    if pong.get('event') != 'pong' or pong.get('id') != 'p1' or pong.get('state') != 'ready':
        problems.append('ping: %s' % pong)
    bad = warm.request({'op': 'run', 'id': 'b1', 'command': 'check', 'stdout': '/nonexistent/fifo', 'stderr': '/nonexistent/fifo'})
    if bad.get('event') != 'error' or bad.get('id') != 'b1':
        problems.append('bad fifo: %s' % bad)
    # FIFOs made by the warm process for later runs: private FIFOs, or a clear refusal.
    fifo_dir = tempfile.mkdtemp(prefix='fifos-', dir=warm.workdir)
    made = warm.request({'op': 'fifos', 'id': 'f1', 'dir': fifo_dir, 'count': 2})
    paths = [p for pair in made.get('paths') or [] for p in pair]
    if made.get('event') != 'fifos' or made.get('id') != 'f1' or len(paths) != 4 or len(set(paths)) != 4:
        problems.append('fifos: %s' % made)
    for path in paths:
        st = os.stat(path)
        if not stat.S_ISFIFO(st.st_mode) or stat.S_IMODE(st.st_mode) != 0o600 or os.path.dirname(path) != fifo_dir:
            problems.append('fifo %s: mode %o' % (path, st.st_mode))
    for bad_request in ({'dir': 'relative/dir', 'count': 1}, {'dir': fifo_dir, 'count': 0}, {'dir': fifo_dir, 'count': True},
                        {'dir': os.path.join(fifo_dir, 'missing'), 'count': 1}):
        refused = warm.request(dict(bad_request, op='fifos', id='f2'))
        if refused.get('event') != 'error' or not refused.get('error'):
            problems.append('fifos %s: %s' % (bad_request, refused))
    if sorted(os.listdir(fifo_dir)) != sorted(os.path.basename(p) for p in paths):
        problems.append('fifos left behind: %s' % os.listdir(fifo_dir))
    unknown = warm.request({'op': 'fly'})
    if unknown.get('event') != 'error':
        problems.append('unknown op: %s' % unknown)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(warm.socket_path)
        sock.sendall(b'{not json\n')
        if json.loads(sock.makefile('rb').readline()).get('event') != 'error':
            problems.append('bad json not refused')
    cold = warm.run('check', ['--settings', 'other.settings'])
    if cold.event != 'cold':
        problems.append('--settings other: %s' % cold.message)
    same = warm.run('check', ['--settings', warm.ready['settings_module']])
    if same.event != 'exited' or same.exit_code != 0:
        problems.append('--settings same module: %s' % same.message)
    cold_env = warm.run('check', [], env={'PYTHONHASHSEED': '123'})
    if cold_env.event != 'cold':
        problems.append('PYTHONHASHSEED env: %s' % cold_env.message)
    with_env = warm.run('diffsettings', ['--output', 'unified'], env={'DJANGOCOMMAND_API_KEY': 'dc_from_env'})
    if with_env.exit_code != 0:
        problems.append('env run: %s' % with_env.message)
    # The signal op: the warm process signals the group of a child it has not reaped yet.
    state = {}

    def kill_via_op(res):
        if not state and b'sleeping' in res.stdout:
            state['reply'] = warm.request({'op': 'signal', 'id': 'sig-1', 'signal': 'SIGKILL'})

    killed = warm.run('sleep_forever', [], on_output=kill_via_op, run_id='sig-1')
    if killed.exit_code != -9 or state.get('reply', {}).get('event') != 'signalled':
        problems.append('signal op: %s %s' % (killed.message, state))
    return {'name': 'protocol', 'ok': not problems, 'problems': problems}


def stale_case(python, project, env, workdir, log_path):
    """Editing a watched file makes the next run "stale"; the warm process then leaves."""
    problems = []
    warm = WarmProcess(python, project, env, workdir, log_path)
    ok = warm.run('fail', ['--code', '0'])
    if ok.exit_code != 0:
        problems.append('first run: %s' % ok.message)
    target = os.path.join(project, 'demo', 'management', 'commands', 'fail.py')
    st = os.stat(target)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    stale = warm.run('fail', ['--code', '0'])
    if stale.event != 'stale' or stale.message.get('changed') != [target]:
        problems.append('after edit: %s' % stale.message)
    try:
        code = warm.proc.wait(10)
    except subprocess.TimeoutExpired:
        code = None
        problems.append('stale warm process did not exit')
    last = warm.proc.stdout.read().decode().strip().splitlines()
    if code != 0 or not last or json.loads(last[-1]).get('reason') != 'drained':
        problems.append('exit %s, last line %s' % (code, last))
    if os.path.exists(warm.socket_path):
        problems.append('socket not removed')
    warm.close()

    # A new command file (nothing imported it) is noticed through the folder's mtime.
    warm = WarmProcess(python, project, env, workdir, log_path)
    new_cmd = os.path.join(project, 'demo', 'management', 'commands', 'brand_new.py')
    with open(new_cmd, 'w') as handle:
        handle.write('from django.core.management.base import BaseCommand\n\n\n'
                     'class Command(BaseCommand):\n    def handle(self, *a, **o):\n        self.stdout.write("new")\n')
    res = warm.run('brand_new', [])
    if res.event != 'stale':
        problems.append('new command file: %s' % res.message)
    warm.close()
    os.unlink(new_cmd)

    # Closing stdin while a command runs: no new runs, but the running one is still
    # reported on its open connection; then the warm process leaves.
    warm = WarmProcess(python, project, env, workdir, log_path)
    res = warm.run('slow', ['--steps', '3', '--delay', '0.2'], on_started=lambda r: warm.proc.stdin.close())
    if res.exit_code != 0 or not bytes(res.stdout).endswith(b'done\n'):
        problems.append('run across stdin EOF: %s' % res.message)
    code, rest = warm.close()
    if code != 0 or 'stdin_closed' not in rest:
        problems.append('after stdin EOF with a child: exit %s, %r' % (code, rest))

    # Closing stdin with nothing running (or the runner died) ends the warm process at once.
    warm = WarmProcess(python, project, env, workdir, log_path)
    t0 = time.monotonic()
    code, rest = warm.close()
    if code != 0 or 'stdin_closed' not in rest or time.monotonic() - t0 > 3:
        problems.append('stdin EOF: exit %s after %.1fs, %r' % (code, time.monotonic() - t0, rest))
    return {'name': 'stale, new command, stdin EOF', 'ok': not problems, 'problems': problems}


def primed_checks_case(python, project, env, workdir, log_path):
    """The warm process ran the checks once at start-up: a warning they raise through
    `warnings` (shown once per place in a process) must still show in each warm run."""
    env = dict(env, EXAMPLE_CHECK_WARNING='1')
    warm = WarmProcess(python, project, env, workdir, log_path)
    problems = [] if warm.ready.get('primed_checks') is True else ['checks not primed: %s' % warm.ready]
    try:
        for attempt in (1, 2):
            cold = run_cold(python, project, env, 'check', [])
            hot = warm.run('check', [])
            if hot.event != 'exited':
                problems.append('warm run %d ended with %s' % (attempt, hot.message))
                continue
            problems += ['run %d: %s' % (attempt, p) for p in exact(cold, hot)]
            if b'the example check was asked to warn' not in bytes(hot.stderr):
                problems.append('run %d: the warning is missing from warm stderr %r' % (attempt, bytes(hot.stderr[:300])))
    finally:
        warm.close()
    return {'name': 'primed checks keep warnings', 'ok': not problems, 'problems': problems}


def bench(python, project, env, warm, rounds):
    """Time to the first stdout byte of `check`: warm (from sending "run") vs cold (from spawn)."""
    cold_s, warm_s = [], []
    for _ in range(rounds):
        cold_s.append(run_cold(python, project, env, 'check', []).first_byte_s)
        warm_s.append(warm.run('check', []).first_byte_s)

    def stats(values):
        ms = [v * 1000 for v in values]
        return {'mean_ms': round(statistics.mean(ms), 1), 'median_ms': round(statistics.median(ms), 1),
                'min_ms': round(min(ms), 1), 'max_ms': round(max(ms), 1)}

    cold, hot = stats(cold_s), stats(warm_s)
    return {'command': 'check', 'rounds': rounds, 'cold_first_byte': cold, 'warm_first_byte': hot,
            'speedup': round(cold['mean_ms'] / hot['mean_ms'], 1) if hot['mean_ms'] else None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--python', default='/usr/bin/python3', help='the project interpreter (has Django)')
    parser.add_argument('--bench', type=int, default=10, metavar='N', help='rounds of the first-byte benchmark (0: skip)')
    parser.add_argument('--buffered', action='store_true', help='run without PYTHONUNBUFFERED (default: set to 1)')
    parser.add_argument('--fast-exit', action='store_true', help='send "fast_exit": true with every run')
    parser.add_argument('--keep', action='store_true', help='keep the temporary folder')
    parser.add_argument('--only', help='comma-separated case names')
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix='dc-warm-')
    project = os.path.join(workdir, 'project')
    # A private copy of the example project: the stale tests edit files in it.
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns('__pycache__', '*.sqlite3', 'db.sqlite3'))
    db_path = os.path.join(workdir, 'db.sqlite3')
    log_path = os.path.join(workdir, 'warm.log')
    env = dict(os.environ, EXAMPLE_DB_PATH=db_path)
    env.pop('DJANGO_SETTINGS_MODULE', None)  # found in manage.py, as a runner would
    env.pop('COLUMNS', None)
    if args.buffered:
        env.pop('PYTHONUNBUFFERED', None)
    else:
        env['PYTHONUNBUFFERED'] = '1'  # what a runner should give cold AND warm processes

    summary = {'python': args.python, 'unbuffered': not args.buffered, 'fast_exit': args.fast_exit, 'cases': []}
    migrate = run_cold(args.python, project, env, 'migrate', [])
    if migrate.exit_code != 0:
        print(json.dumps({'ok': False, 'error': 'migrate failed', 'stderr': bytes(migrate.stderr).decode()}))
        return 1

    warm = WarmProcess(args.python, project, env, workdir, log_path, fast_exit=args.fast_exit)
    summary['ready'] = warm.ready
    summary['spawn_to_ready_ms'] = round(warm.spawn_to_ready_s * 1000, 1)
    only = set(args.only.split(',')) if args.only else None
    try:
        for name, command, argv, rule, kwargs in CASES:
            if only and name not in only:
                continue
            summary['cases'].append(compare_case(args.python, project, env, warm, name, command, argv, rule, kwargs))
        if not only:
            summary['cases'].append(touch_note_case(args.python, project, env, warm, db_path))
            summary['cases'].append(concurrency_case(warm))
            summary['cases'].append(protocol_cases(warm, project))
            if args.bench:
                summary['bench'] = bench(args.python, project, env, warm, args.bench)
    finally:
        code, rest = warm.close()
        summary['warm_exit'] = {'code': code, 'stdout_tail': rest.strip()}
    if not only:
        summary['cases'].append(primed_checks_case(args.python, project, env, workdir, log_path))
        summary['cases'].append(stale_case(args.python, project, env, workdir, log_path))
    with open(log_path, 'rb') as handle:
        summary['warm_log_tail'] = handle.read()[-2000:].decode('utf-8', 'replace')

    failed = [case['name'] for case in summary['cases'] if not case['ok']]
    summary['ok'] = not failed and code == 0
    summary['failed'] = failed
    if args.keep:
        summary['workdir'] = workdir
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    passed = len(summary['cases']) - len(failed)
    print('warm_driver: %d passed, %d failed' % (passed, len(failed)), file=sys.stderr)
    return 0 if summary['ok'] else 1


if __name__ == '__main__':
    sys.exit(main())
