"""djangocommand audited shell: `manage.py shell` on a pseudo-terminal, read-only by default.

Started by the Node runner (src/runner/shell.ts) with the project's own interpreter, in the
project folder:  python shell.py READ_ONLY(0|1) COLS ROWS

Standard library and Django only. It makes the pseudo-terminal itself (pty.fork), so the runner
needs no native module. Two processes:

  relay (this process)                          shell (the pty child: its session leader)
  stdin  <- frames from the runner              django.setup() inherited, read-only applied,
  stdout -> frames to the runner                `manage.py shell` (IPython, bpython or plain)
  master fd of the pty  <───────────────────▶   slave side as stdin/stdout/stderr
  control pipes (JSON lines) + SIGUSR1  ◀────▶  writable("reason") / readonly() in builtins

Frames on stdin and stdout: one byte kind, a u32 big-endian length, the payload.
  b'D' terminal bytes (runner → relay: typed input; relay → runner: terminal output)
  b'C' one JSON object (control)
Control from the runner: {"op": "resize", "cols", "rows"}; {"op": "mode", "read_only", ...}
(the server's decision, applied in the running interpreter); {"op": "answer", "request_id",
"granted": false, "message"}; {"op": "flow", "paused"} (stop or go on reading the terminal's
output: the server is behind); {"op": "close"}.
Control to the runner (event): started, refused, echo (the terminal's ECHO flag changed: input
typed while it is off, like a getpass password, is not recorded), writable_request, mode (what
the interpreter now enforces), exited.

A mode change reaches the interpreter by a line on its control pipe and SIGUSR1: the handler
runs in the main thread (where Django's connections live), even while it waits in input().
"""
import builtins
import errno
import fcntl
import json
import os
import pty
import select
import signal
import struct
import sys
import termios
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import bootstrap  # noqa: E402  (beside this file: Django loading and read-only mode live there)

MAX_QUEUED_INPUT = 1 << 20
READ_CHUNK = 1 << 16
WRITE_CHUNK = 1 << 10
CLOSE_GRACE_S = 2.0
WRITABLE_WAIT_S = 300


# --------------------------------------------------------------------------- framing

def frame(kind, payload):
    return kind + struct.pack('>I', len(payload)) + payload


def control(obj):
    return frame(b'C', json.dumps(obj, ensure_ascii=True).encode('ascii'))


class FrameReader:
    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data
        out = []
        while len(self.buf) >= 5:
            length = struct.unpack('>I', bytes(self.buf[1:5]))[0]
            if len(self.buf) < 5 + length:
                break
            out.append((bytes(self.buf[0:1]), bytes(self.buf[5:5 + length])))
            del self.buf[:5 + length]
        return out


def write_all(fd, data):
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        view = view[n:]


# --------------------------------------------------------------------------- read-only mode

def read_only_api():
    """bootstrap.py's read-only mode (the same as commands get), worded for a shell."""
    hint = 'call writable("reason") to ask for writes'
    return (lambda: bootstrap.enable_read_only(hint=hint, subject='this shell')), bootstrap.disable_read_only


# --------------------------------------------------------------------------- the shell (pty child)

class ShellSide:
    """Lives in the pty child: applies the server's decisions, offers writable() and readonly()."""

    def __init__(self, ctl_in, ctl_out, read_only):
        self.ctl_in = ctl_in
        self.ctl_out = ctl_out
        self.read_only = read_only
        self.enable, self.disable = read_only_api()
        self.buf = b''
        self.answers = {}
        self.draining = False
        os.set_blocking(ctl_in, False)

    def send(self, obj):
        write_all(self.ctl_out, (json.dumps(obj, ensure_ascii=True) + '\n').encode('ascii'))

    def apply(self, read_only, quiet=False):
        if read_only:
            self.enable()
        else:
            self.disable()
        self.read_only = read_only
        self.send({'event': 'mode', 'read_only': read_only})
        if not quiet:
            say('this shell is now %s' % ('READ-ONLY' if read_only else 'WRITABLE: every write is recorded'))

    def drain(self, *_):
        # The signal handler may interrupt writable()'s own drain: one at a time.
        if self.draining:
            return
        self.draining = True
        try:
            while True:
                try:
                    data = os.read(self.ctl_in, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                if not data:
                    break
                self.buf += data
            while b'\n' in self.buf:
                line, self.buf = self.buf.split(b'\n', 1)
                try:
                    msg = json.loads(line.decode('utf-8'))
                except ValueError:
                    continue
                if msg.get('op') == 'mode':
                    self.apply(bool(msg.get('read_only')), quiet=bool(msg.get('request_id')))
                if msg.get('request_id'):
                    self.answers[msg['request_id']] = msg
        finally:
            self.draining = False

    def writable(self, reason=None):
        """Ask the server to make this shell writable, with a reason: it is audited and announced."""
        reason = (str(reason) if reason is not None else '').strip()
        if not reason:
            say('give a reason: writable("fix order 1234 stuck in payment")')
            return
        if not self.read_only:
            say('this shell is writable already')
            return
        try:
            answer = input('Make this shell writable? The reason goes to the audit log and to the team. Type yes to confirm: ')
        except (EOFError, KeyboardInterrupt):
            answer = ''
        if answer.strip().lower() != 'yes':
            say('still read-only')
            return
        rid = str(uuid.uuid4())
        self.send({'event': 'writable_request', 'request_id': rid, 'reason': reason[:2000]})
        say('asking the server...')
        deadline = time.monotonic() + WRITABLE_WAIT_S
        try:
            while rid not in self.answers and time.monotonic() < deadline:
                select.select([self.ctl_in], [], [], 0.25)
                self.drain()
        except KeyboardInterrupt:
            say('stopped waiting; the server may still answer')
            return
        msg = self.answers.pop(rid, None)
        if msg is None:
            say('no answer from the server: still read-only')
        elif msg.get('op') == 'mode' and msg.get('read_only') is False:
            say('this shell is now WRITABLE (%s). Back with readonly().' % reason)
        else:
            say('refused: %s' % msg.get('message', 'the server said no'))

    def readonly(self):
        """Back to read-only, at once."""
        if self.read_only:
            say('this shell is read-only already')
            return
        self.apply(True)


def say(text):
    try:
        sys.stderr.write('\r\n[djangocommand] %s\r\n' % text)
        sys.stderr.flush()
    except Exception:
        pass


class Helper:
    """writable("reason") and readonly() as the shell shows them."""

    def __init__(self, fn, text):
        self.fn = fn
        self.text = text

    def __call__(self, *args, **kwargs):
        return self.fn(*args, **kwargs)

    def __repr__(self):
        return self.text


def run_shell(ctl_in, ctl_out, read_only):
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, bootstrap._ORIGINAL_SIGNALS.get(sig, signal.SIG_DFL))
    # No job control here: Ctrl-Z would stop the interpreter with no shell to bring it back.
    signal.signal(signal.SIGTSTP, signal.SIG_IGN)
    side = ShellSide(ctl_in, ctl_out, read_only)
    signal.signal(signal.SIGUSR1, side.drain)
    if read_only:
        side.enable()
    side.send({'event': 'mode', 'read_only': read_only})
    builtins.writable = Helper(side.writable, '<writable("reason"): ask the server to allow writes>')
    builtins.readonly = Helper(side.readonly, '<readonly(): back to read-only>')
    say('audited shell, %s. Everything is recorded. %s' % (
        'READ-ONLY' if read_only else 'WRITABLE',
        'Writes fail; writable("reason") asks for them.' if read_only else 'readonly() stops writes.'))
    sys.argv = ['manage.py', 'shell']
    code = 0
    try:
        from django.core.management import call_command
        call_command('shell')
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    os._exit(code)


# --------------------------------------------------------------------------- the relay

def set_size(fd, cols, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))


def echo_on(fd):
    """False while the terminal hides what is typed: echo off in line mode, as getpass does.

    Line editors (readline, prompt_toolkit) turn echo off too, but also line mode (ICANON), and
    echo each key themselves: what is typed there is shown, so it is recorded.
    """
    try:
        lflag = termios.tcgetattr(fd)[3]
    except termios.error:
        return True
    return bool(lflag & termios.ECHO) or not (lflag & termios.ICANON)


def main(argv):
    proto = bootstrap.take_protocol_stdout()
    send = lambda data: write_all(proto, data)  # noqa: E731
    if len(argv) != 3:
        send(control({'event': 'refused', 'reason': 'usage: shell.py READ_ONLY COLS ROWS'}))
        return 2
    read_only = argv[0] == '1'
    cols, rows = max(1, min(int(argv[1]), 1000)), max(1, min(int(argv[2]), 1000))
    try:
        module, _ = bootstrap.prepare_django()
        bootstrap.setup_django(module)
        from django.conf import settings
        if getattr(settings, 'DJANGOCOMMAND_ALLOW_SHELL', True) is False:
            send(control({'event': 'refused', 'reason': 'this project forbids shells (DJANGOCOMMAND_ALLOW_SHELL = False in its Django settings)'}))
            return 3
    except bootstrap.BootstrapError as exc:
        send(control({'event': 'refused', 'reason': 'cannot load the Django project: %s' % exc.message}))
        return 1

    p2c_r, p2c_w = os.pipe()
    c2p_r, c2p_w = os.pipe()
    pid, master = pty.fork()
    if pid == 0:
        os.close(p2c_w)
        os.close(c2p_r)
        try:
            os.close(proto)
        except OSError:
            pass
        run_shell(p2c_r, c2p_w, read_only)
        os._exit(1)
    os.close(p2c_r)
    os.close(c2p_w)
    set_size(master, cols, rows)
    os.kill(pid, signal.SIGWINCH)
    send(control({'event': 'started', 'pid': pid, 'read_only': read_only}))
    return relay(pid, master, p2c_w, c2p_r, send)


def relay(pid, master, p2c_w, c2p_r, send):
    os.set_blocking(master, False)
    stdin = 0
    reader = FrameReader()
    pending = bytearray()
    ctl_buf = b''
    echo = echo_on(master)
    stdin_open = True
    closing_at = None
    child_gone = False
    paused = False

    def tell_child(msg):
        try:
            write_all(p2c_w, (json.dumps(msg) + '\n').encode('ascii'))
            os.kill(pid, signal.SIGUSR1)
        except OSError:
            pass

    def hang_up():
        for sig in (signal.SIGHUP, signal.SIGCONT):
            try:
                os.killpg(pid, sig)
            except OSError:
                pass

    while True:
        # Paused: the server is behind (the person's connection, the recording); the shell waits on its next write.
        readers = [c2p_r] if paused else [master, c2p_r]
        if stdin_open and len(pending) < MAX_QUEUED_INPUT:
            readers.append(stdin)
        writers = [master] if pending and not paused else []
        try:
            r, w, _ = select.select(readers, writers, [], 0.5)
        except InterruptedError:
            continue
        if closing_at is not None and time.monotonic() > closing_at:
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            closing_at = None
        if stdin in r:
            data = os.read(stdin, READ_CHUNK)
            if not data:
                # The runner is gone: nobody can see this shell any more.
                stdin_open = False
                hang_up()
                closing_at = time.monotonic() + CLOSE_GRACE_S
            for kind, payload in reader.feed(data):
                if kind == b'D':
                    pending += payload
                    continue
                try:
                    msg = json.loads(payload.decode('utf-8'))
                except ValueError:
                    continue
                op = msg.get('op')
                if op == 'resize':
                    try:
                        set_size(master, max(1, min(int(msg['cols']), 1000)), max(1, min(int(msg['rows']), 1000)))
                        os.killpg(pid, signal.SIGWINCH)
                    except (OSError, KeyError, ValueError, TypeError):
                        pass
                elif op in ('mode', 'answer'):
                    tell_child(msg)
                elif op == 'flow':
                    paused = bool(msg.get('paused'))
                elif op == 'close':
                    hang_up()
                    closing_at = time.monotonic() + CLOSE_GRACE_S
        if c2p_r in r:
            try:
                data = os.read(c2p_r, 65536)
            except OSError:
                data = b''
            ctl_buf += data
            while b'\n' in ctl_buf:
                line, ctl_buf = ctl_buf.split(b'\n', 1)
                try:
                    msg = json.loads(line.decode('utf-8'))
                except ValueError:
                    continue
                if msg.get('event') in ('writable_request', 'mode'):
                    send(control(msg))
        if master in r:
            try:
                data = os.read(master, READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                data = None
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data = b''
            if data == b'':
                child_gone = True
            elif data:
                now_echo = echo_on(master)
                if now_echo != echo:
                    echo = now_echo
                    send(control({'event': 'echo', 'on': echo}))
                send(frame(b'D', data))
        # Typed input goes in small pieces, after the output was read: the terminal's echo of it
        # must find room, or the kernel drops echo (not input) once its echo buffer is full.
        if master in w and pending and not paused:
            try:
                n = os.write(master, pending[:WRITE_CHUNK])
                del pending[:n]
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                pending.clear()
        if child_gone:
            break
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else (status >> 8)
    send(control({'event': 'exited', 'code': code}))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
