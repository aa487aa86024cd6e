#!/usr/bin/env python3
"""djangocommand bootstrap: the runner's helper inside the Django project's interpreter.

The runner starts this file with the project's own Python, the working directory being the
project folder (where manage.py is). Standard library + Django only; Python 3.8-3.13,
Django 3.2-5.x, Linux.

    python bootstrap.py settings            one JSON object on stdout, exit 0 (1 on error)
    python bootstrap.py commands            one JSON object on stdout, exit 0 (1 on error)
    python bootstrap.py warm SOCKET_PATH    a long-lived, pre-loaded Django process
    python bootstrap.py exec PARENT_PID PROGRAM [ARG...]
                                            becomes PROGRAM (execvp), dying with PARENT_PID
    python bootstrap.py run-read-only COMMAND [ARG...]
                                            `python manage.py COMMAND ARG...` in read-only
                                            database mode (see "read-only mode" below)

Commands never outlive the runner. On Linux every process the runner starts asks for a
parent-death signal (prctl PR_SET_PDEATHSIG, through ctypes):
    runner (node) --spawn--> warm process (own group)  --fork--> command (setsid: own group)
                  --spawn--> exec shim (own group) --execvp--> cold command (same pid)
    the warm process gets SIGTERM when the runner dies (it then kills its children), a
    forked command SIGKILL when the warm process dies, a cold command SIGKILL when the
    runner dies. The signal reaches only that process, not what the command started itself;
    where prctl is unavailable the warm process still leaves (stdin EOF, ppid watch) and kills
    its children. The runner's next start kills whatever is left (src/runner/leftovers.ts).

exec PARENT_PID PROGRAM [ARG...] -- what the runner starts a cold command through: arms the
    parent-death signal (SIGKILL) for PARENT_PID, puts SIGPIPE and SIGXFSZ back to their
    defaults (Python ignores them; a spawn would not), and execvp()s PROGRAM with ARGs: the
    same pid, command line, environment and fds as if the runner had spawned PROGRAM itself.
    Runs before this file's imports (start with -S to skip site too): a few ms per command.
    Exit status 127 and a line on stderr when PROGRAM cannot be executed.

DJANGO_SETTINGS_MODULE comes from the environment; when absent it is read from manage.py's
``os.environ.setdefault('DJANGO_SETTINGS_MODULE', '...')`` (or ``os.environ[...] = '...'``).
The project folder becomes sys.path[0], as it is for ``python manage.py``.

stdout carries protocol only. Every JSON document is ONE line written to the original
stdout; fd 1 is then pointed at stderr, so anything the project prints while it is imported
ends up on stderr (the runner's log), never in the JSON.

Errors, in every mode, before any result: exit status 1 and
    {"ok": false, "code": C, "error": "one readable sentence", "traceback": str|null}
(warm mode adds "event": "error"), C being one of
    bad_usage, no_settings_module, django_missing, settings_import_failed,
    settings_invalid, setup_failed, socket_failed, internal.

settings -> {"ok": true, "settings": {NAME: value|null}, "types": {NAME: type name|null},
             "base_dir", "python_version", "django_version", "settings_module",
             "settings_module_source": "env"|"manage.py"}
    for each DJANGOCOMMAND_* name the runner knows. A value is null and its type null when
    the setting is not defined (a setting defined as None has type "NoneType"). Values are
    JSON; sets/frozensets become sorted lists; anything JSON cannot hold becomes
    {"repr": repr(value), "type": type name}. Nothing is validated here: the runner does it
    (the "types" tell it "str" where a tuple was needed). django.setup() is NOT called.

commands -> {"ok": true, "python_version", "django_version", "commands": [
                {"name", "app_label", "help_text", "schema"} or, when the command cannot be
                loaded or its parser cannot be built, the same with "schema": null and
                "error": "one line" (help_text "" or, like the Python runner, its `help`)],
             "schedules": null | [{"name", "command", "args", "cron", "timezone"}]}
    schedules is DJANGOCOMMAND_SCHEDULES with its defaults filled in (null: not defined); a
    wrong shape (not a list of dicts of strings, an unknown key) is settings_invalid.
    help_text is cmd.create_parser('manage.py', name).format_help() with COLUMNS=80.
    schema = {"prog", "description", "epilog", "arguments": [ARG...],
              "groups": [{"required": bool, "dests": [...]}],       mutually exclusive groups
              "subcommands": null | {"dest", "required", "metavar", "help",
                                     "choices": {name: schema}, "choices_help": {name: help},
                                     "aliases": {alias: name}}}
    ARG = {"dest", "option_strings", "kind", "nargs", "type", "choices", "default" |
           "suppressed": true, "required", "help", "metavar", "const", "common"}
    with kind in store|store_const|store_true|store_false|append|append_const|count|help|
    version|extend|boolean_optional|other, type in str|int|float|bool|file|other:<name>;
    "hidden": true when argparse hides its help; "choices_truncated": true when there were
    more than 1000 choices (then "choices" is null).

warm SOCKET_PATH -- the warm process
    States: starting -> ready -> draining -> gone.
    starting: django.setup(), every command module imported (failures remembered), the
        system checks run once with their results discarded (see _prime_checks), the
        files of the project's imported modules stat()ed, database connections closed,
        SOCKET_PATH (a Unix stream socket, mode 0600) listening. Then ONE line on stdout:
          {"event": "ready", "pid", "loaded_commands": n, "failed_commands": [{"name",
           "app_label", "error"}], "watched_files": n, "primed_checks": bool,
           "startup_ms", "python_version",
           "django_version", "settings_module", "threads": [names of threads other than
           the main one: forking with threads is unsafe, prefer cold runs when non-empty]}
        or, on failure, {"ok": false, "event": "error", ...} and exit status 1.
    ready: serves connections. Newline-delimited JSON both ways; one connection may carry
        many requests; a run's events go to the connection that asked for it (keep it open
        until "exited": events for a closed connection are dropped).
        -> {"op": "run", "id": ID, "command": "migrate", "argv": ["--plan"],
            "stdout": FIFO_PATH, "stderr": FIFO_PATH, "env": {"NAME": "value" | null}}
           argv and env are optional; env null unsets. The same path may be given twice.
           Optional "fast_exit": true ends the child with os._exit() after threads,
           atexit and open files are flushed, skipping the interpreter's module teardown
           (~50 ms in a fork; __del__ of objects still alive at exit then never runs).
           Optional "read_only": true runs the command in read-only database mode (the
           child drops inherited connections and calls enable_read_only() first).
           <- {"id", "event": "error", "error"}       bad request; nothing was started
           <- {"id", "event": "stale", "reason": "changed", "changed": [up to 5 paths]}
                  a watched file changed or vanished since start-up: run it cold, start a
                  new warm process. This one goes draining (and unlinks its socket).
           <- {"id", "event": "cold", "reason"}      cannot be made identical warm (argv
                  --settings/--pythonpath, or env changing DJANGO_SETTINGS_MODULE,
                  PYTHON*, LANG, LC_*): run it cold; this process stays ready.
           <- {"id", "event": "started", "pid"}       pid == process group == session id
           <- {"id", "event": "exited", "pid", "exit_code"[, "error"]}
                  exit_code like subprocess' returncode: -N when killed by signal N.
                  "error" (with exit_code 127) when the child could not even set itself up
                  (e.g. a FIFO could not be opened); its output then never arrives.
        -> {"op": "signal", "id": ID, "signal": 15 | "SIGTERM", "group": true}
           <- {"id", "event": "signalled", "signal": 15} or {"id", "event": "error", ...}
           Optional: the runner may as well kill(-pid) itself; doing it here cannot hit a
           recycled pid, since the child is not reaped yet.
        -> {"op": "fifos", "id": ID, "dir": DIR, "count": n (1..16)}
           <- {"id", "event": "fifos", "paths": [[OUT, ERR], ...]}: n pairs of new FIFOs
              (mode 0600, random names, no suffix) in DIR, for later runs; making them here spares
              the runner a mkfifo process per run. Or {"id", "event": "error", "error"}.
        -> {"op": "ping"}  <- {"event": "pong", "pid", "state": "ready"|"draining",
                               "loaded_commands", "failed_commands", "running": [ids],
                               "watched_files"}
        -> {"op": "shutdown"}  <- {"event": "shutting_down", "running": [ids]}: draining.
        Any message may carry "id"; replies repeat it. Unknown op or bad JSON:
        {"event": "error", "error"}. A line longer than 1 MiB closes the connection.
    draining: no listening socket; runs are answered "stale" with "reason": "changed" or
        "shutting_down"; running children are still reported. Gone when none is left.
    When stdin reaches EOF (the runner keeps it open as a pipe; if stdin is not pollable
        the parent pid is watched instead): draining, and gone as soon as no child is left
        OR no connection is left open (a dead runner's connections close with it), so a
        runner may close stdin of a warm process it replaces and still get "exited" for
        what runs there. Gone at once on SIGTERM/SIGINT/SIGHUP. Children still running
        when it goes are killed (SIGKILL to their groups): nobody could report their end.
        The last stdout line is {"event": "exiting", "pid", "reason":
        "drained"|"stdin_closed"|"parent_died"|"signal SIGTERM"|..., "killed": [run ids]},
        exit status 0. It asks for SIGTERM when its parent (the runner) dies, each child
        for SIGKILL when the warm process dies (see "Commands never outlive the runner").
    "started" always comes before "exited" for the same id.

    Environment: give the warm process the environment a cold run would get (the runner
    should set PYTHONUNBUFFERED=1 for both, so output streams live either way). Settings
    are evaluated once, at start-up: a variable the settings read belongs in the warm
    process's environment, not in a run's "env".

    Output FIFOs: create them (mkfifo) and open the read ends with O_RDONLY|O_NONBLOCK
    BEFORE sending "run"; the child's open for writing blocks until a reader exists. Read
    only when poll/epoll says readable: a FIFO no writer has opened yet reads as EOF but is
    not reported readable on Linux. When "exited" has arrived, drain; a FIFO that never got
    a writer (the "error" case) will not reach EOF by itself.

    The child (what makes a warm run equal a cold `python manage.py CMD ARGS`): setsid();
    signal dispositions back to a fresh interpreter's; stdin = /dev/null; stdout/stderr =
    the FIFOs, dup2()ed onto fds 1 and 2 under the SAME sys.stdout/sys.stderr objects the
    interpreter created (same encoding, errors, name), made line-buffered; env applied;
    sys.argv = ['manage.py', CMD, *ARGS]; the project's manage.py is executed as __main__
    (execute_from_command_line(sys.argv) when there is no manage.py); SystemExit turned
    into a status like the interpreter does, uncaught exceptions printed by sys.excepthook
    with the bootstrap's own frames removed; then the interpreter exits normally (threads
    joined, atexit handlers run, stdio flushed: 120 when stdout cannot be flushed).

    Not identical, by construction: what happens at import time (a settings or command
    module printing or warning while imported) happens once, in the warm process, and goes
    to its stderr; the string hash seed (PYTHONHASHSEED) is the warm process's for every
    child; os.getppid() is the warm process; /proc/PID/cmdline shows bootstrap.py; threads
    the project started at import time do not exist in the child; objects inherited from
    the warm process are never garbage-collected in the child (gc.freeze()).

run-read-only COMMAND [ARG...] -- a cold read-only run (the runner starts it through `exec`):
    the project folder first on sys.path, sys.argv = ['manage.py', COMMAND, *ARGS], manage.py
    run as __main__ (as in a warm child), read-only mode enabled right after django.setup(),
    before any command code. Exit status as `python manage.py` would give, except that a run
    whose writes were refused (and swallowed) exits 1 instead of 0.

read-only mode -- enable_read_only(hint=None), disable_read_only(), read_only_active(),
    ReadOnlyError: every database alias refuses writes, with the database's own session
    setting (PostgreSQL default_transaction_read_only, SQLite PRAGMA query_only, MySQL SESSION
    TRANSACTION READ ONLY) on every connection and an execute wrapper refusing write statements
    ("read-only mode: ..." errors). See the section of that name below.
"""
import os
import sys
import time

_T0 = time.monotonic()


# --------------------------------------------------------------------------- parent death
# Before the imports below: `exec` runs in front of every cold command and needs none of them.

PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum, parent_pid):
    """Ask Linux to send `signum` to this process when its parent dies (PR_SET_PDEATHSIG).

    True when armed. False where it cannot be (not Linux, no ctypes, prctl refused): the
    caller's fallback applies. When the parent is already gone (it died before the request
    was made, so nobody would ever send the signal), the signal is sent at once.
    """
    if not sys.platform.startswith('linux'):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        ulong = ctypes.c_ulong
        if libc.prctl(ctypes.c_int(PR_SET_PDEATHSIG), ulong(signum), ulong(0), ulong(0), ulong(0)) != 0:
            return False
    except Exception:  # ImportError, OSError, AttributeError: a Python without ctypes or prctl
        return False
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signum)
    return True


def mode_exec(args):
    """exec PARENT_PID PROGRAM [ARG...]: see the module documentation."""
    import signal as signals
    if len(args) < 2 or not args[0].isdigit():
        sys.stderr.write('usage: bootstrap.py exec PARENT_PID PROGRAM [ARG...]\n')
        return 2
    set_parent_death_signal(signals.SIGKILL, int(args[0]))
    for name in ('SIGPIPE', 'SIGXFSZ'):
        if hasattr(signals, name):
            signals.signal(getattr(signals, name), signals.SIG_DFL)
    try:
        os.execvp(args[1], args[1:])
    except OSError as exc:
        sys.stderr.write('cannot execute %s: %s\n' % (args[1], exc.strerror or exc))
    return 127


if __name__ == '__main__' and sys.argv[1:2] == ['exec']:
    sys.exit(mode_exec(sys.argv[2:]))

import argparse  # noqa: E402  (after _T0 on purpose: start-up time includes imports)
import gc  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import selectors  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import stat  # noqa: E402
import traceback  # noqa: E402

# Signal dispositions as the interpreter set them up, restored in forked children.
_SIGNALS_TO_RESTORE = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)
_ORIGINAL_SIGNALS = {sig: signal.getsignal(sig) for sig in _SIGNALS_TO_RESTORE}

PROJECT_DIR = os.path.abspath(os.getcwd())

RUNNER_SETTINGS = (
    'DJANGOCOMMAND_API_KEY',
    'DJANGOCOMMAND_SERVER_URL',
    'DJANGOCOMMAND_HEARTBEAT_INTERVAL',
    'DJANGOCOMMAND_REQUEST_TIMEOUT',
    'DJANGOCOMMAND_MAX_RETRIES',
    'DJANGOCOMMAND_ALLOW_HTTP_HOSTS',
    'DJANGOCOMMAND_ALLOWED_COMMANDS',
    'DJANGOCOMMAND_USE_BLOCKLIST',
    'DJANGOCOMMAND_DISALLOWED_COMMANDS',
    'DJANGOCOMMAND_METADATAONLY_COMMANDS',
    # The TypeScript runner's own settings; the Python runner ignores them.
    'DJANGOCOMMAND_MAX_CONCURRENCY',
    'DJANGOCOMMAND_WARM_START',
    'DJANGOCOMMAND_COLD_COMMANDS',
    'DJANGOCOMMAND_READONLY_COMMANDS',
    'DJANGOCOMMAND_KILL_GRACE',
    'DJANGOCOMMAND_SPOOL_MAX_MB',
)

# Options every Django command gets from BaseCommand.create_parser (plus argparse's -h).
COMMON_DESTS = frozenset((
    'verbosity', 'settings', 'pythonpath', 'traceback', 'no_color', 'force_color',
    'skip_checks', 'version', 'help',
))


class BootstrapError(Exception):
    """A failure reported as {"ok": false, "code": ..., "error": ...}."""

    def __init__(self, code, message, tb=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.tb = tb


# --------------------------------------------------------------------------- output

def take_protocol_stdout():
    """Keep the real stdout for protocol lines only; point fd 1 at stderr.

    Settings and command modules may print while they are imported: that must not end up
    in the middle of the JSON. Returns a private fd onto the original stdout.
    """
    try:
        sys.stdout.flush()
    except Exception:
        pass
    proto = os.dup(1)  # non-inheritable (PEP 446)
    try:
        os.dup2(2, 1)
    except OSError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    return proto


def encode_line(obj):
    """One JSON document on one ASCII line (non-ASCII and lone surrogates are escaped)."""
    try:
        text = json.dumps(obj, ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:  # a bug: keep the protocol alive all the same
        text = json.dumps({'ok': False, 'code': 'internal', 'error': 'cannot encode reply: %s' % exc})
    return (text + '\n').encode('ascii')


def write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def error_doc(exc):
    if isinstance(exc, BootstrapError):
        return {'ok': False, 'code': exc.code, 'error': exc.message, 'traceback': exc.tb}
    return {
        'ok': False, 'code': 'internal', 'error': one_line(exc),
        'traceback': traceback.format_exc(),
    }


def one_line(exc):
    text = '%s: %s' % (type(exc).__name__, exc) if str(exc) else type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return ' '.join(lines)[:500]


def safe_repr(value):
    try:
        return repr(value)
    except Exception:
        return object.__repr__(value)


def safe_str(value):
    if value is None or isinstance(value, str):
        return value
    try:
        return str(value)  # lazy translation strings, mostly
    except Exception:
        return safe_repr(value)


def json_safe(value, depth=0):
    """value as JSON: sets as sorted lists, the unrepresentable as {"repr", "type"}."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if value != value or value in (float('inf'), float('-inf')):
            return {'repr': repr(value), 'type': 'float'}
        return value
    if depth > 32:
        return {'repr': safe_repr(value)[:1000], 'type': type(value).__name__}
    if isinstance(value, (list, tuple)):
        return [json_safe(item, depth + 1) for item in value]
    if isinstance(value, (set, frozenset)):
        try:
            items = sorted(value)
        except TypeError:  # mixed types: any stable order will do
            items = sorted(value, key=safe_repr)
        return [json_safe(item, depth + 1) for item in items]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str):
                name = key
            elif key is None or isinstance(key, (bool, int, float)):
                name = json.dumps(key)  # what json.dumps itself does with such keys
            else:
                name = safe_repr(key)
            out[name] = json_safe(item, depth + 1)
        return out
    return {'repr': safe_repr(value), 'type': type(value).__name__}


# --------------------------------------------------------------------------- Django

_SETDEFAULT_RE = re.compile(
    r"""os\.environ\.setdefault\(\s*(['"])DJANGO_SETTINGS_MODULE\1\s*,\s*(['"])([^'"\s]+)\2\s*\)""")
_ASSIGN_RE = re.compile(
    r"""os\.environ\[\s*(['"])DJANGO_SETTINGS_MODULE\1\s*\]\s*=\s*(['"])([^'"\s]+)\2""")


def find_settings_module():
    """(module, source): from the environment, else from manage.py."""
    from_env = os.environ.get('DJANGO_SETTINGS_MODULE')
    if from_env:
        return from_env, 'env'
    manage = os.path.join(PROJECT_DIR, 'manage.py')
    try:
        with open(manage, encoding='utf-8', errors='replace') as handle:
            source = handle.read()
    except OSError as exc:
        raise BootstrapError(
            'no_settings_module',
            'DJANGO_SETTINGS_MODULE is not set and there is no readable manage.py in %s (%s); '
            'set DJANGO_SETTINGS_MODULE for the runner' % (PROJECT_DIR, exc.strerror or exc))
    # Commented-out lines must not count.
    code = '\n'.join(line for line in source.splitlines() if not line.lstrip().startswith('#'))
    match = _SETDEFAULT_RE.search(code) or _ASSIGN_RE.search(code)
    if not match:
        raise BootstrapError(
            'no_settings_module',
            "DJANGO_SETTINGS_MODULE is not set and %s does not contain "
            "os.environ.setdefault('DJANGO_SETTINGS_MODULE', '...'); set "
            "DJANGO_SETTINGS_MODULE for the runner" % manage)
    return match.group(3), 'manage.py'


def prepare_django():
    """Put the project first on sys.path, set DJANGO_SETTINGS_MODULE, import Django."""
    # sys.path[0] is this file's folder (unless -P/-I): replace it, as manage.py's own
    # folder is sys.path[0] for `python manage.py`.
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        sys.path[0] = PROJECT_DIR
    else:
        sys.path.insert(0, PROJECT_DIR)
    module, source = find_settings_module()
    os.environ['DJANGO_SETTINGS_MODULE'] = module
    try:
        import django  # noqa: F401
    except ImportError as exc:
        raise BootstrapError(
            'django_missing',
            'Django cannot be imported by %s (%s): run the runner with the project\'s own '
            'Python interpreter or virtualenv' % (sys.executable, exc),
            traceback.format_exc())
    return module, source


def load_settings(module):
    """Import the settings module (not the apps), classifying failures."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    try:
        settings.INSTALLED_APPS
    except ImportError as exc:
        raise BootstrapError(
            'settings_import_failed', 'cannot import settings module %r: %s' % (module, one_line(exc)),
            traceback.format_exc())
    except ImproperlyConfigured as exc:
        raise BootstrapError('settings_invalid', one_line(exc), traceback.format_exc())
    except Exception as exc:
        raise BootstrapError(
            'settings_import_failed', 'settings module %r failed: %s' % (module, one_line(exc)),
            traceback.format_exc())
    return settings


def setup_django(module):
    import django
    load_settings(module)
    try:
        django.setup()
    except Exception as exc:
        raise BootstrapError('setup_failed', 'django.setup() failed: %s' % one_line(exc), traceback.format_exc())


def versions():
    import django
    return {'python_version': platform.python_version(), 'django_version': django.get_version()}


# --------------------------------------------------------------------------- settings mode

def mode_settings():
    module, source = prepare_django()
    settings = load_settings(module)
    missing = object()
    values, types = {}, {}
    for name in RUNNER_SETTINGS:
        value = getattr(settings, name, missing)
        if value is missing:
            values[name], types[name] = None, None
        else:
            values[name], types[name] = json_safe(value), type(value).__name__
    base_dir = getattr(settings, 'BASE_DIR', None)

    # Values that look secret, for the runner to scrub from command output before it leaves the
    # host: strings of 8+ characters under a name with KEY, TOKEN, SECRET or PASSWORD, also
    # nested (DATABASES.default.PASSWORD; a list inherits its setting's name). Never printed to
    # logs: they go to the runner on this pipe only, and stay in its memory.
    words = ('KEY', 'TOKEN', 'SECRET', 'PASSWORD')
    not_secret = frozenset(('PASSWORD_HASHERS', 'AUTH_PASSWORD_VALIDATORS', 'PASSWORD_RESET_TIMEOUT', 'PASSWORD_RESET_TIMEOUT_DAYS', 'KEY_PREFIX', 'KEY_FUNCTION'))
    secrets = []

    def collect(path, key, value, depth):
        if depth > 8 or len(secrets) >= 1000:
            return
        if isinstance(value, str):
            if len(value) >= 8 and any(w in key.upper() for w in words):
                secrets.append({'name': path, 'value': value})
        elif isinstance(value, dict):
            for k, v in list(value.items()):
                if isinstance(k, str) and k.upper() not in not_secret:
                    collect('%s.%s' % (path, k), k, v, depth + 1)
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                collect('%s.%d' % (path, i), key, v, depth + 1)

    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # reading a deprecated setting warns
        for name in dir(settings):
            if name.isupper() and name not in not_secret:
                try:
                    collect(name, name, getattr(settings, name), 0)
                except Exception:
                    pass
    patterns = getattr(settings, 'DJANGOCOMMAND_REDACT_PATTERNS', None)
    result = {
        'ok': True,
        'settings': values,
        'types': types,
        'base_dir': str(base_dir) if base_dir is not None else PROJECT_DIR,
        'settings_module': module,
        'settings_module_source': source,
        'secrets': secrets,
        'redact_patterns': json_safe(patterns) if patterns is not None else None,
    }
    result.update(versions())
    return result


# --------------------------------------------------------------------------- commands mode

def _action_kinds():
    """(class, kind) pairs, most specific class first; classes missing in old Pythons skipped."""
    order = (
        ('BooleanOptionalAction', 'boolean_optional'),  # 3.9+
        ('_StoreTrueAction', 'store_true'),  # subclasses of _StoreConstAction
        ('_StoreFalseAction', 'store_false'),
        ('_StoreConstAction', 'store_const'),
        ('_ExtendAction', 'extend'),  # a subclass of _AppendAction
        ('_AppendAction', 'append'),
        ('_AppendConstAction', 'append_const'),
        ('_CountAction', 'count'),
        ('_HelpAction', 'help'),
        ('_VersionAction', 'version'),
        ('_StoreAction', 'store'),
    )
    found = []
    for name, kind in order:
        cls = getattr(argparse, name, None)
        if isinstance(cls, type):
            found.append((cls, kind))
    return found


_ACTION_KINDS = _action_kinds()
_SUBPARSERS_ACTION = getattr(argparse, '_SubParsersAction', None)
_MAX_CHOICES = 1000
_MAX_DEPTH = 8


def _kind(action):
    for cls, kind in _ACTION_KINDS:
        if isinstance(action, cls):
            return kind
    return 'other'


def _type_name(kind):
    if kind is None or kind is str:
        return 'str'
    for builtin in (int, float, bool):
        if kind is builtin:
            return builtin.__name__
    if isinstance(kind, argparse.FileType):
        return 'file'
    if isinstance(kind, str):  # a name registered with parser.register('type', ...)
        return 'other:' + kind
    return 'other:' + str(getattr(kind, '__name__', None) or type(kind).__name__)


def _nargs(nargs):
    if nargs is None or isinstance(nargs, (int, str)) and not isinstance(nargs, bool):
        return nargs
    return safe_repr(nargs)


def _choices(choices, entry):
    if choices is None:
        return None
    try:
        iterator = iter(choices.keys() if isinstance(choices, dict) else choices)
        items = []
        for item in iterator:
            if len(items) == _MAX_CHOICES:
                entry['choices_truncated'] = True
                return None
            items.append(json_safe(item))
        return items
    except Exception:  # a container that only implements __contains__
        entry['choices_repr'] = safe_repr(choices)[:1000]
        return None


def _help(action, formatter, entry):
    text = action.help
    if text == argparse.SUPPRESS:
        entry['hidden'] = True
        return None
    if text is None:
        return None
    if formatter is not None:
        try:
            # What format_help() shows: %(default)s etc. expanded, and whatever the
            # formatter class adds (ArgumentDefaultsHelpFormatter's "(default: ...)").
            return safe_str(formatter._expand_help(action))
        except Exception:
            pass
    return safe_str(text)


def _metavar(metavar):
    if metavar is None:
        return None
    if isinstance(metavar, tuple):
        return [safe_str(item) for item in metavar]
    return safe_str(metavar)


def argument_schema(action, formatter, top_level):
    entry = {'dest': safe_str(getattr(action, 'dest', None))}
    try:
        entry['option_strings'] = [safe_str(s) for s in (action.option_strings or [])]
        entry['kind'] = _kind(action)
        entry['nargs'] = _nargs(action.nargs)
        entry['type'] = _type_name(action.type)
        entry['choices'] = _choices(action.choices, entry)
        if action.default is argparse.SUPPRESS or action.default == argparse.SUPPRESS:
            entry['suppressed'] = True
        else:
            entry['default'] = json_safe(action.default)
        # argparse marks a positional with nargs='*' (and no default) required, although
        # zero values satisfy it; report what the command line really needs.
        optional_positional = not action.option_strings and action.nargs in ('?', '*', argparse.REMAINDER)
        entry['required'] = bool(action.required) and not optional_positional
        entry['help'] = _help(action, formatter, entry)
        entry['metavar'] = _metavar(action.metavar)
        entry['const'] = json_safe(action.const)
        entry['common'] = bool(top_level and action.dest in COMMON_DESTS)
    except Exception as exc:  # an odd custom Action: describe what we can
        entry.setdefault('option_strings', [])
        entry['kind'] = 'other'
        entry['error'] = one_line(exc)
    return entry


def _subcommands_schema(action, depth):
    mapping = getattr(action, '_name_parser_map', None) or action.choices or {}
    choices, aliases, first_name, schemas = {}, {}, {}, {}
    for name, subparser in mapping.items():
        key = id(subparser)
        if key in first_name:
            aliases[name] = first_name[key]
        else:
            first_name[key] = name
            schemas[key] = parser_schema(subparser, False, depth + 1) if depth < _MAX_DEPTH else None
        choices[name] = schemas[key]
    choices_help = {}
    for pseudo in getattr(action, '_choices_actions', []) or []:
        help_text = getattr(pseudo, 'help', None)
        if help_text not in (None, argparse.SUPPRESS):
            choices_help[safe_str(pseudo.dest)] = safe_str(help_text)
    dest = action.dest
    return {
        'dest': None if dest in (None, argparse.SUPPRESS) else safe_str(dest),
        'required': bool(action.required),
        'metavar': _metavar(action.metavar),
        'help': None if action.help in (None, argparse.SUPPRESS) else safe_str(action.help),
        'choices': choices,
        'choices_help': choices_help,
        'aliases': aliases,
    }


def parser_schema(parser, top_level=True, depth=0):
    """A JSON description of an argparse parser (argparse internals, read defensively)."""
    schema = {
        'prog': safe_str(getattr(parser, 'prog', None)),
        'description': safe_str(getattr(parser, 'description', None)),
        'epilog': safe_str(getattr(parser, 'epilog', None)),
        'arguments': [],
        'groups': [],
        'subcommands': None,
    }
    try:
        formatter = parser._get_formatter()
    except Exception:
        formatter = None
    for action in list(getattr(parser, '_actions', None) or []):
        if _SUBPARSERS_ACTION is not None and isinstance(action, _SUBPARSERS_ACTION):
            if schema['subcommands'] is None:  # argparse allows only one anyway
                try:
                    schema['subcommands'] = _subcommands_schema(action, depth)
                except Exception as exc:
                    schema['subcommands_error'] = one_line(exc)
            continue
        schema['arguments'].append(argument_schema(action, formatter, top_level))
    for group in list(getattr(parser, '_mutually_exclusive_groups', None) or []):
        try:
            schema['groups'].append({
                'required': bool(group.required),
                'dests': [safe_str(a.dest) for a in group._group_actions],
            })
        except Exception:
            pass
    return schema


def _app_label(app_name):
    if isinstance(app_name, str):
        return app_name
    # get_commands() may map a name to an already loaded command instance.
    return type(app_name).__module__


def _load_command(name, app_name):
    from django.core.management import load_command_class
    from django.core.management.base import BaseCommand
    if isinstance(app_name, BaseCommand):
        return app_name
    return load_command_class(app_name, name)


def describe_command(name, app_name):
    entry = {'name': name, 'app_label': _app_label(app_name), 'help_text': '', 'schema': None}
    try:
        command = _load_command(name, app_name)
    except BaseException as exc:  # SystemExit from an import must not end the listing
        if isinstance(exc, KeyboardInterrupt):
            raise
        entry['error'] = 'cannot load command: %s' % one_line(exc)
        return entry
    try:
        parser = command.create_parser('manage.py', name)
        entry['help_text'] = parser.format_help()
        entry['schema'] = parser_schema(parser)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        # Like the Python runner: keep the command, with its short help.
        entry['help_text'] = safe_str(getattr(command, 'help', '') or '')
        entry['schema'] = None
        entry['error'] = 'cannot build argument parser: %s' % one_line(exc)
    return entry


def mode_commands():
    # argparse wraps help to the terminal width: make the text the same everywhere.
    os.environ['COLUMNS'] = '80'
    module, _source = prepare_django()
    setup_django(module)
    from django.core.management import get_commands
    commands = [describe_command(name, app) for name, app in sorted(get_commands().items())]
    from django.conf import settings
    result = {'ok': True, 'commands': commands, 'schedules': code_schedules(settings)}
    result.update(versions())
    return result


SCHEDULE_KEYS = ('name', 'command', 'args', 'cron', 'timezone')


def code_schedules(settings):
    """DJANGOCOMMAND_SCHEDULES with the defaults filled in (name: the command, args: '',
    timezone: 'UTC'), or None when the setting is not defined. Only the shape is checked here
    (a list of dicts of strings, known keys, command and cron given); the server checks the
    cron expression, the zone, the command and its arguments."""
    value = getattr(settings, 'DJANGOCOMMAND_SCHEDULES', None)
    if value is None:
        return None

    def refuse(where, problem):
        raise BootstrapError(
            'settings_invalid',
            'DJANGOCOMMAND_SCHEDULES%s %s; each entry is a dict like '
            '{"command": "clearsessions", "cron": "0 3 * * *", "args": "", "timezone": "UTC", "name": "nightly"}'
            % (where, problem))

    if not isinstance(value, (list, tuple)):
        refuse('', 'must be a list of dicts, not %s' % type(value).__name__)
    out = []
    for i, entry in enumerate(value):
        where = '[%d]' % i
        if not isinstance(entry, dict):
            refuse(where, 'must be a dict, not %s' % type(entry).__name__)
        unknown = sorted(repr(k) for k in entry if k not in SCHEDULE_KEYS)
        if unknown:
            refuse(where, 'has unknown key%s %s (known: %s)' % ('s' if len(unknown) > 1 else '', ', '.join(unknown), ', '.join(SCHEDULE_KEYS)))
        for key, v in sorted(entry.items()):
            if not isinstance(v, str):
                refuse('%s[%r]' % (where, key), 'must be a string, not %s' % type(v).__name__)
        for key in ('command', 'cron'):
            if not entry.get(key, '').strip():
                refuse(where, 'needs a non-empty %r' % key)
        out.append({
            'name': (entry.get('name') or '').strip() or entry['command'].strip(),
            'command': entry['command'].strip(),
            'args': entry.get('args', ''),
            'cron': entry['cron'].strip(),
            'timezone': (entry.get('timezone') or '').strip() or 'UTC',
        })
    return out


# --------------------------------------------------------------------------- read-only mode
# Contract for other modules (the shell): /work/helpers/readonly-api.md; summary:
#   enable_read_only(hint=None), disable_read_only(), read_only_active() -> bool, ReadOnlyError.
# Two layers, both at the database connection, for every alias and every thread:
#   1. the database's own session setting on every connection (open now or opened later):
#      PostgreSQL default_transaction_read_only, SQLite PRAGMA query_only, MySQL SESSION
#      TRANSACTION READ ONLY -- the database itself refuses any write, raw SQL included;
#   2. an execute wrapper on every Django DatabaseWrapper that refuses write statements before
#      they are sent, with an error naming read-only mode (and catches what layer 1 cannot
#      see, e.g. SET ... READ WRITE, which would undo it).
# A safety net against mistakes, not a sandbox: Python code can always open a connection of
# its own with the driver, bypassing Django.

READ_ONLY_DEFAULT_HINT = (
    'to write, start a writable run: without --read-only (CLI), with "read-only" unticked '
    '(dashboard) or "read_only": false (API), for a command that is not read-only by default '
    '(DJANGOCOMMAND_READONLY_COMMANDS, the server\'s command setting)')


class ReadOnlyError(Exception):
    """A database write refused in read-only mode. What is raised is also a Django
    DatabaseError (see _read_only_error_class), so atomic() blocks roll back as usual."""

    def __init__(self, message, alias=None, statement=None):
        super().__init__(message)
        self.alias = alias
        self.statement = statement


_READ_ONLY = {'active': False, 'hint': READ_ONLY_DEFAULT_HINT, 'subject': 'this run', 'refused': 0, 'error_class': None,
              'signal': False}

# Statements that only read (or manage transactions); anything else is refused.
_READ_STATEMENTS = frozenset((
    'SELECT', 'WITH', 'VALUES', 'TABLE', 'SHOW', 'EXPLAIN', 'DESCRIBE', 'DESC', 'PRAGMA',
    'BEGIN', 'START', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE', 'SET', 'FETCH',
    'MOVE', 'CLOSE', 'DECLARE', 'LISTEN', 'UNLISTEN', 'USE',
))
# Words that make a reading statement write (data-modifying CTEs, FOR UPDATE, SELECT INTO,
# sequences and settings changed from a SELECT).
_WRITE_WORDS = frozenset((
    'INSERT', 'UPDATE', 'DELETE', 'MERGE', 'UPSERT', 'INTO', 'NEXTVAL', 'SETVAL', 'SET_CONFIG',
    'LO_IMPORT', 'LO_UNLINK', 'LO_CREATE', 'LO_FROM_BYTEA', 'LO_PUT',
))
# SQLite pragmas that only read, also when given an argument in parentheses.
_READ_PRAGMAS = frozenset((
    'TABLE_INFO', 'TABLE_XINFO', 'INDEX_LIST', 'INDEX_INFO', 'INDEX_XINFO', 'FOREIGN_KEY_LIST',
    'FOREIGN_KEY_CHECK', 'INTEGRITY_CHECK', 'QUICK_CHECK', 'COLLATION_LIST', 'DATABASE_LIST',
    'FUNCTION_LIST', 'MODULE_LIST', 'PRAGMA_LIST', 'TABLE_LIST', 'COMPILE_OPTIONS',
))
_SQL_TOKEN = re.compile(r"""
      (?P<space>\s+)
    | (?P<line_comment>--[^\n]*)
    | (?P<block_comment>/\*.*?(?:\*/|\Z))
    | (?P<string>[EeBbXxNn]?'(?:[^']|'')*(?:'|\Z))
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z0-9_]*)?\$.*?(?:\$(?P=tag)\$|\Z))
    | (?P<quoted>"(?:[^"]|"")*(?:"|\Z)|`(?:[^`]|``)*(?:`|\Z)|\[[^\]]*(?:\]|\Z))
    | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    | (?P<semicolon>;)
    | (?P<other>.)
""", re.S | re.X)


def _sql_statements(sql):
    """The SQL's statements, each as [(kind, text)] of its significant tokens (no comments,
    no whitespace; words upper-cased; literals and quoted names kept as opaque tokens)."""
    statements, current = [], []
    for match in _SQL_TOKEN.finditer(sql):
        kind = match.lastgroup
        if kind == 'tag':
            kind = 'dollar'
        if kind in ('space', 'line_comment', 'block_comment'):
            continue
        if kind == 'semicolon':
            if current:
                statements.append(current)
            current = []
            continue
        text = match.group(0)
        current.append((kind, text.upper() if kind == 'word' else text))
    if current:
        statements.append(current)
    return statements


def write_statement(sql):
    """The keyword naming why `sql` would write (e.g. "INSERT"), or None when it only reads."""
    if isinstance(sql, bytes):
        sql = sql.decode('utf-8', 'replace')
    if not isinstance(sql, str):
        sql = str(sql)  # psycopg2.sql.Composed and the like: as good as it gets without a connection
    for tokens in _sql_statements(sql):
        words = [text for kind, text in tokens if kind == 'word']
        if not words:
            continue  # "(", ")", literals only: nothing a database would run
        first = words[0]
        if first not in _READ_STATEMENTS:
            return first
        if first == 'PRAGMA':
            name = words[1] if len(words) > 1 else ''
            if any(text == '=' for kind, text in tokens) or ('(' in (t for _k, t in tokens) and name not in _READ_PRAGMAS):
                return 'PRAGMA %s' % name.lower()
            continue
        if first in ('SET', 'BEGIN', 'START'):
            # READ WRITE, or a setting that holds the mode (default_transaction_read_only,
            # transaction_read_only, tx_read_only, query_only); ISOLATION LEVEL READ COMMITTED is fine.
            if ('READ', 'WRITE') in set(zip(words, words[1:])) or 'SESSION_AUTHORIZATION' in words \
                    or any('READ_ONLY' in w or w == 'QUERY_ONLY' or 'READ_WRITE' in w for w in words):
                return '%s (transaction mode)' % first
            continue
        if first == 'DECLARE' or first == 'LISTEN' or first == 'UNLISTEN' or first == 'FETCH' \
                or first == 'MOVE' or first == 'CLOSE' or first == 'USE':
            if first == 'DECLARE' and any(w in _WRITE_WORDS for w in words):
                return 'DECLARE'
            continue
        for i, word in enumerate(words):
            if word in _WRITE_WORDS:
                if word == 'UPDATE' and i > 0 and words[i - 1] in ('FOR', 'KEY', 'NO'):
                    return 'SELECT ... FOR UPDATE'
                return word
            if word == 'FOR' and i + 1 < len(words) and words[i + 1] in ('SHARE', 'KEY', 'NO'):
                return 'SELECT ... FOR UPDATE' if 'UPDATE' in words[i + 1:i + 4] else 'SELECT ... FOR SHARE'
            if word == 'LOCK' and i + 2 < len(words) and words[i + 1] == 'IN' and words[i + 2] == 'SHARE':
                return 'SELECT ... LOCK IN SHARE MODE'
    return None


def _read_only_error_class():
    cls = _READ_ONLY['error_class']
    if cls is None:
        from django.db.utils import DatabaseError
        cls = type('ReadOnlyError', (ReadOnlyError, DatabaseError), {'__module__': __name__})
        _READ_ONLY['error_class'] = cls
    return cls


def _refuse(alias, statement):
    _READ_ONLY['refused'] += 1
    message = ('read-only mode: %s may not write to the database (%s refused on database %r); %s'
               % (_READ_ONLY['subject'], statement, alias, _READ_ONLY['hint']))
    return _read_only_error_class()(message, alias=alias, statement=statement)


def _read_only_wrapper(execute, sql, params, many, context):
    if _READ_ONLY['active']:
        text = sql
        if not isinstance(sql, (str, bytes)) and hasattr(sql, 'as_string'):
            try:  # psycopg's sql.Composed: its text needs the driver's cursor
                text = sql.as_string(getattr(context['cursor'], 'cursor', None))
            except Exception:
                text = sql
        statement = write_statement(text)
        if statement is not None:
            raise _refuse(context['connection'].alias, statement)
    return execute(sql, params, many, context)


def _session_sql(vendor, read_only):
    if vendor == 'postgresql':
        return ['SET SESSION CHARACTERISTICS AS TRANSACTION %s' % ('READ ONLY' if read_only else 'READ WRITE')]
    if vendor == 'sqlite':
        return ['PRAGMA query_only = %s' % ('ON' if read_only else 'OFF')]
    if vendor == 'mysql':
        return ['SET SESSION TRANSACTION %s' % ('READ ONLY' if read_only else 'READ WRITE')]
    return []  # other backends: the execute wrapper alone


def _apply_session(wrapper, read_only):
    """The database's own read-only session setting on an open connection, sent on the driver's
    connection (not through Django's cursor, so the execute wrapper does not see it)."""
    raw = wrapper.connection
    if raw is None:
        return
    statements = _session_sql(wrapper.vendor, read_only)
    if not statements:
        return
    cursor = raw.cursor()
    try:
        for sql in statements:
            cursor.execute(sql)
    finally:
        cursor.close()


def _install_on(wrapper):
    if _read_only_wrapper not in wrapper.execute_wrappers:
        wrapper.execute_wrappers.append(_read_only_wrapper)


def _on_connection_created(sender, connection, **kwargs):
    if _READ_ONLY['active']:
        _install_on(connection)
        _apply_session(connection, True)


def enable_read_only(hint=None, subject='this run'):
    """Make every database alias read-only in this process (see the module contract).
    `subject` names what may not write in the refusal ("this run", "this shell")."""
    from django.db import connections
    from django.db.backends.signals import connection_created
    _read_only_error_class()
    _READ_ONLY['hint'] = hint or READ_ONLY_DEFAULT_HINT
    _READ_ONLY['subject'] = subject
    _READ_ONLY['active'] = True
    if not _READ_ONLY['signal']:
        connection_created.connect(_on_connection_created, weak=False, dispatch_uid='djangocommand_read_only')
        _READ_ONLY['signal'] = True
    for alias in connections:
        wrapper = connections[alias]
        _install_on(wrapper)
        if wrapper.connection is not None:
            _apply_session(wrapper, True)


def disable_read_only():
    """Make this process writable again (see the module contract)."""
    if not _READ_ONLY['active']:
        return
    _READ_ONLY['active'] = False
    from django.db import connections
    for alias in connections:
        wrapper = connections[alias]
        if wrapper.connection is not None:
            try:
                _apply_session(wrapper, False)
            except Exception:
                wrapper.close()  # e.g. an aborted transaction: a new connection is writable


def read_only_active():
    return _READ_ONLY['active']


def _drop_inherited_connections():
    """In a forked child: no connection object of the warm process may be used (the warm
    process closes its connections before fork(), so normally there are none)."""
    from django.db import connections
    for alias in connections:
        wrapper = connections[alias]
        if wrapper.connection is not None:
            wrapper.close()


def _enable_read_only_after_setup():
    """Read-only mode right after django.setup(), before any command code runs (cold runs)."""
    import django
    original = django.setup

    def setup(*args, **kwargs):
        result = original(*args, **kwargs)
        django.setup = original
        enable_read_only()
        return result
    django.setup = setup


def _read_only_status(status):
    """A read-only command that swallowed refused writes must not look successful."""
    refused = _READ_ONLY['refused']
    if refused and status == 0:
        try:
            sys.stderr.write('read-only mode: %d database write%s refused; exit status 1\n'
                             % (refused, ' was' if refused == 1 else 's were'))
            sys.stderr.flush()
        except Exception:
            pass
        return 1
    return status


def mode_run_read_only(args):
    """run-read-only CMD [ARG...]: `python manage.py CMD ARG...` in read-only mode (cold runs)."""
    if not args:
        sys.stderr.write('usage: bootstrap.py run-read-only COMMAND [ARG...]\n')
        return 2
    here = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == here:
        sys.path[0] = PROJECT_DIR
    else:
        sys.path.insert(0, PROJECT_DIR)
    try:
        import django  # noqa: F401
    except ImportError as exc:
        sys.stderr.write('read-only mode: Django cannot be imported by %s (%s)\n' % (sys.executable, exc))
        return 1
    _enable_read_only_after_setup()
    _set_argv(args[0], list(args[1:]))
    manage = os.path.join(PROJECT_DIR, 'manage.py')
    source = None
    if os.path.isfile(manage):
        with open(manage, 'rb') as handle:
            source = handle.read()
    filename = manage if sys.version_info >= (3, 9) else 'manage.py'
    return _read_only_status(_run_entry(source, filename))


# --------------------------------------------------------------------------- warm mode

class FileWatcher:
    """mtimes of the code the warm process loaded that a person may edit.

    Watched: the files of imported modules, except those of the interpreter's standard
    library and of installed packages (anything under a site-packages or dist-packages
    folder, wherever it is -- also a virtualenv inside the project folder). That is the
    project's own code, plus code on sys.path outside the installed packages (an editable
    `pip install -e ../lib` or a PYTHONPATH checkout): what changes while a runner lives.
    Library upgrades are deployments; the runner restarts for those. Also watched: each
    non-library app's management/commands folder (its mtime changes when a command file is
    added or removed, which get_commands() would otherwise miss), or its absence.
    Not watched: data files, .env files, anything read at import time that is not a module.
    """

    LIBRARY_FOLDERS = frozenset(('site-packages', 'dist-packages'))

    def __init__(self):
        import sysconfig
        roots = set()
        paths = sysconfig.get_paths()
        for key in ('stdlib', 'platstdlib'):
            if paths.get(key):
                roots.add(os.path.realpath(paths[key]))
                roots.add(os.path.abspath(paths[key]))
        self.roots = tuple(sorted(roots))
        self.signatures = {}

    def is_library(self, path):
        if self.LIBRARY_FOLDERS.intersection(path.split(os.sep)):
            return True
        real = os.path.realpath(path)
        for candidate in (path, real):
            for root in self.roots:
                if candidate == root or candidate.startswith(root + os.sep):
                    return True
        return bool(self.LIBRARY_FOLDERS.intersection(real.split(os.sep)))

    @staticmethod
    def signature(path):
        try:
            st = os.stat(path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def snapshot(self, app_paths):
        signatures = {}
        for module in list(sys.modules.values()):
            filename = getattr(module, '__file__', None)
            if not isinstance(filename, str) or not filename:
                continue
            path = os.path.abspath(filename)
            if path in signatures or self.is_library(path):
                continue
            sig = self.signature(path)
            if sig is not None:  # e.g. a module inside a zip file: nothing to stat
                signatures[path] = sig
        for app_path in app_paths:
            folder = os.path.join(os.path.abspath(app_path), 'management', 'commands')
            if not self.is_library(folder):
                signatures[folder] = self.signature(folder)  # None: absent, and must stay so
        self.signatures = signatures

    def changed(self, limit=5):
        found = []
        for path, old in self.signatures.items():
            if self.signature(path) != old:
                found.append(path)
                if len(found) >= limit:
                    break
        return found


class Forked(BaseException):
    """Raised in the child right after fork() to leave the server loop.

    A BaseException so that no `except Exception` on the way swallows it.
    """

    def __init__(self, request, status_fd):
        super().__init__()
        self.request = request
        self.status_fd = status_fd


class Connection:
    MAX_LINE = 1 << 20

    def __init__(self, sock):
        self.sock = sock
        self.inbuf = b''
        self.outbuf = b''
        self.closed = False


class Child:
    def __init__(self, run_id, conn, status_fd):
        self.id = run_id
        self.conn = conn
        self.status_fd = status_fd


_COLD_ENV = frozenset(('DJANGO_SETTINGS_MODULE', 'LANG', 'LANGUAGE', 'LC_ALL', 'LC_CTYPE'))


def _signal_number(value):
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        name = value.upper()
        if not name.startswith('SIG'):
            name = 'SIG' + name
        number = getattr(signal, name, None)
        if isinstance(number, int) and not name.startswith('SIG_'):
            return int(number)
    return None


def _exit_code(status):
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return status


def _prime_checks():
    """Run the system checks once and throw their results away; True when they ran.

    Nearly every command runs them first (`requires_system_checks`), and the first run in a
    process pays for lazy work: the URLconf and its views imported, each model's cached
    `_meta` properties, compiled patterns. Done here, every fork inherits it (a `check` then
    starts printing in ~5 ms instead of ~30). Checks only inspect; no database is named, so
    none is queried. Warnings are ignored inside catch_warnings, which leaves no trace in
    the "shown once" registries: a child still shows each warning as a cold run would.
    A failing check is left for the command to report, as it would cold.
    """
    import warnings
    from django.core import checks
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            checks.run_checks(include_deployment_checks=False)
    except Exception:
        return False
    return True


class WarmServer:
    def __init__(self, socket_path, proto_fd):
        self.socket_path = os.path.abspath(socket_path)
        self.proto_fd = proto_fd
        self.pid = os.getpid()
        self.ppid = os.getppid()
        self.watcher = FileWatcher()
        self.loaded = 0
        self.failed = []
        self.primed = False
        self.settings_module = None
        self.listener = None
        self.socket_inode = None
        self.selector = None
        self.wake_r = self.wake_w = None
        self.stdin_polled = False
        self.conns = {}
        self.children = {}
        self.draining = None  # None, 'changed' or 'shutting_down'
        self.orphaned = None  # None, 'stdin_closed' or 'parent_died'
        self.exit_reason = None

    # -- start-up ----------------------------------------------------------------
    def start(self):
        self.settings_module, _source = prepare_django()
        setup_django(self.settings_module)
        from django.apps import apps
        from django.core.management import get_commands
        from django.db import connections
        for name, app_name in sorted(get_commands().items()):
            try:
                _load_command(name, app_name)  # imports the module; the instance is dropped
                self.loaded += 1
            except BaseException as exc:
                if isinstance(exc, KeyboardInterrupt):
                    raise
                self.failed.append({'name': name, 'app_label': _app_label(app_name), 'error': one_line(exc)})
        self.primed = _prime_checks()
        connections.close_all()
        gc.collect()  # start-up garbage must not be frozen into every child (see _fork)
        self.watcher.snapshot([app.path for app in apps.get_app_configs()])
        self.listen()

    def listen(self):
        path = self.socket_path
        if len(path.encode()) > 107:  # sun_path holds 108 bytes on Linux, NUL included
            raise BootstrapError('socket_failed', 'socket path is too long for a Unix socket (%d bytes, at most 107): %s'
                                 % (len(path.encode()), path))
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            st = None
        if st is not None:
            if not stat.S_ISSOCK(st.st_mode):
                raise BootstrapError('socket_failed', '%s exists and is not a socket; refusing to replace it' % path)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # left behind by a dead process
            else:
                raise BootstrapError('socket_failed', '%s is in use by another process' % path)
            finally:
                probe.close()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old_umask = os.umask(0o177)  # created 0600: no window where others could connect
        try:
            listener.bind(path)
        except OSError as exc:
            listener.close()
            raise BootstrapError('socket_failed', 'cannot listen on %s: %s' % (path, exc.strerror or exc))
        finally:
            os.umask(old_umask)  # children must inherit the umask a cold run would have
        os.chmod(path, 0o600)
        listener.listen(64)
        listener.setblocking(False)
        self.listener = listener
        self.socket_inode = os.stat(path).st_ino

    def ready_doc(self):
        import threading
        doc = {
            'event': 'ready',
            'pid': self.pid,
            'loaded_commands': self.loaded,
            'failed_commands': self.failed,
            'watched_files': len(self.watcher.signatures),
            'primed_checks': self.primed,
            'startup_ms': round((time.monotonic() - _T0) * 1000, 1),
            'settings_module': self.settings_module,
            'threads': [t.name for t in threading.enumerate() if t is not threading.main_thread()],
        }
        doc.update(versions())
        return doc

    # -- loop --------------------------------------------------------------------
    def serve(self):
        """Run until gone. Returns None in the warm process, a Forked in a child."""
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        # Signals are handled in the loop: the C-level handler writes the signal number to
        # wake_w, which wakes select(); the Python handlers do nothing themselves.
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in _SIGNALS_TO_RESTORE:
            signal.signal(sig, lambda signum, frame: None)
        self.selector.register(self.wake_r, selectors.EVENT_READ, 'wake')
        self.selector.register(self.listener, selectors.EVENT_READ, 'listen')
        try:
            self.selector.register(0, selectors.EVENT_READ, 'stdin')
            self.stdin_polled = True
        except (OSError, ValueError):
            self.stdin_polled = False  # /dev/null or a file: fall back to watching the ppid
        try:
            self._loop()
        except Forked as forked:
            return forked
        return None

    def _loop(self):
        while self.exit_reason is None:
            if self.draining and not self.children:
                self.exit_reason = self.orphaned or 'drained'
                break
            if self.orphaned and not self.conns:
                self.exit_reason = self.orphaned  # nobody left to tell about the children
                break
            for key, mask in self.selector.select(timeout=1.0):
                tag = key.data
                if tag == 'wake':
                    self._on_wake()
                elif tag == 'listen':
                    self._accept()
                elif tag == 'stdin':
                    self._on_stdin()
                else:
                    conn = tag
                    if mask & selectors.EVENT_READ and not conn.closed:
                        self._on_readable(conn)
                    if mask & selectors.EVENT_WRITE and not conn.closed:
                        self._flush(conn)
                if self.exit_reason is not None:
                    break
            self._reap()
            if not self.stdin_polled and not self.orphaned and os.getppid() != self.ppid:
                self._orphan('parent_died')

    def _orphan(self, reason):
        """The runner closed our stdin or died: finish up, but don't lose exit codes.

        No new runs are taken. While a connection is still open and children are still
        running, their "exited" events are still delivered (a runner may close stdin of
        an old warm process it replaces and keep listening); otherwise we go at once.
        A dead runner's connections are closed by the kernel, so that is "at once" too.
        """
        self.orphaned = reason
        self._drain('shutting_down')

    def _on_wake(self):
        try:
            data = os.read(self.wake_r, 512)
        except BlockingIOError:
            return
        for signum in data:
            if signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                self.exit_reason = 'signal %s' % signal.Signals(signum).name
        # SIGCHLD: _reap() runs after every select round anyway.

    def _on_stdin(self):
        try:
            data = os.read(0, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b''
        if not data:
            self.selector.unregister(0)
            self._orphan('stdin_closed')

    def _accept(self):
        while True:
            try:
                sock, _addr = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            sock.setblocking(False)
            conn = Connection(sock)
            self.conns[sock.fileno()] = conn
            self.selector.register(sock, selectors.EVENT_READ, conn)

    def _on_readable(self, conn):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b''
        if not data:
            self._close(conn)
            return
        conn.inbuf += data
        while not conn.closed:
            newline = conn.inbuf.find(b'\n')
            if newline < 0:
                if len(conn.inbuf) > Connection.MAX_LINE:
                    self.send(conn, {'event': 'error', 'error': 'message longer than 1 MiB'})
                    self._flush(conn)
                    self._close(conn)
                return
            line, conn.inbuf = conn.inbuf[:newline], conn.inbuf[newline + 1:]
            if line.strip():
                try:
                    self._handle_line(conn, line)  # Forked (a BaseException) passes through
                except Exception as exc:  # a bug or e.g. fork() failing: keep serving
                    self.send(conn, {'event': 'error', 'error': 'internal error: %s' % one_line(exc)})

    def send(self, conn, obj):
        if conn is None or conn.closed:
            return
        conn.outbuf += encode_line(obj)
        self._flush(conn)

    def _flush(self, conn):
        while conn.outbuf and not conn.closed:
            try:
                sent = conn.sock.send(conn.outbuf)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(conn)
                return
            conn.outbuf = conn.outbuf[sent:]
        if conn.closed:
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if conn.outbuf else 0)
        self.selector.modify(conn.sock, events, conn)

    def _close(self, conn):
        if conn.closed:
            return
        conn.closed = True
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self.conns.pop(conn.sock.fileno(), None)
        conn.sock.close()

    # -- requests ----------------------------------------------------------------
    def _handle_line(self, conn, line):
        try:
            msg = json.loads(line.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as exc:
            self.send(conn, {'event': 'error', 'error': 'not a JSON line: %s' % exc})
            return
        if not isinstance(msg, dict):
            self.send(conn, {'event': 'error', 'error': 'a message must be a JSON object'})
            return
        op = msg.get('op')
        reply_id = {'id': msg['id']} if 'id' in msg else {}
        if op == 'run':
            self._op_run(conn, msg)  # may raise Forked in the child
        elif op == 'fifos':
            self.send(conn, dict(reply_id, **self._op_fifos(msg)))
        elif op == 'ping':
            doc = dict(reply_id, event='pong', pid=self.pid, state='draining' if self.draining else 'ready',
                       loaded_commands=self.loaded, failed_commands=self.failed,
                       running=[child.id for child in self.children.values()],
                       watched_files=len(self.watcher.signatures))
            self.send(conn, doc)
        elif op == 'signal':
            self._op_signal(conn, msg)
        elif op == 'shutdown':
            self.send(conn, dict(reply_id, event='shutting_down',
                                 running=[child.id for child in self.children.values()]))
            self._drain('shutting_down')
        else:
            self.send(conn, dict(reply_id, event='error', error='unknown op %r' % (op,)))

    @staticmethod
    def _validate_run(msg):
        """The run request, normalised; raises ValueError with a readable message."""
        run_id = msg.get('id')
        if not isinstance(run_id, str) or not run_id:
            raise ValueError('"id" must be a non-empty string')
        command = msg.get('command')
        if not isinstance(command, str) or not command or '\0' in command:
            raise ValueError('"command" must be a non-empty string')
        argv = msg.get('argv', [])
        if argv is None:
            argv = []
        if not isinstance(argv, list) or not all(isinstance(a, str) and '\0' not in a for a in argv):
            raise ValueError('"argv" must be a list of strings')
        env = msg.get('env') or {}
        if not isinstance(env, dict):
            raise ValueError('"env" must be an object')
        for name, value in env.items():
            if not name or '=' in name or '\0' in name:
                raise ValueError('bad environment variable name %r' % name)
            if value is not None and (not isinstance(value, str) or '\0' in value):
                raise ValueError('environment variable %s must be a string or null' % name)
        paths = {}
        for stream in ('stdout', 'stderr'):
            path = msg.get(stream)
            if not isinstance(path, str) or not path or '\0' in path:
                raise ValueError('"%s" must be the path of a FIFO' % stream)
            try:
                st = os.stat(path)
            except OSError as exc:
                raise ValueError('%s %s: %s' % (stream, path, exc.strerror or exc))
            if stat.S_ISDIR(st.st_mode):
                raise ValueError('%s %s is a directory' % (stream, path))
            paths[stream] = path
        fast_exit = msg.get('fast_exit', False)
        if not isinstance(fast_exit, bool):
            raise ValueError('"fast_exit" must be true or false')
        read_only = msg.get('read_only', False)
        if not isinstance(read_only, bool):
            raise ValueError('"read_only" must be true or false')
        return {'id': run_id, 'command': command, 'argv': list(argv), 'env': dict(env),
                'stdout': paths['stdout'], 'stderr': paths['stderr'], 'fast_exit': fast_exit,
                'read_only': read_only}

    def _cold_reason(self, req):
        """Why this run cannot be made identical in a fork of this process, or None."""
        argv = req['argv']
        for i, arg in enumerate(argv):
            for option in ('--settings', '--pythonpath'):
                if arg == option:
                    value = argv[i + 1] if i + 1 < len(argv) else None
                elif arg.startswith(option + '='):
                    value = arg[len(option) + 1:]
                else:
                    continue
                if option == '--settings' and value == self.settings_module:
                    continue  # the settings already loaded
                return '%s is applied before Django starts, and Django is already started here' % option
        for name, value in req['env'].items():
            if (name in _COLD_ENV or name.startswith('PYTHON')) and os.environ.get(name) != value:
                return ('environment variable %s is read when the interpreter or Django starts, '
                        'and it differs from the warm process\'s' % name)
        return None

    def _op_run(self, conn, msg):
        try:
            req = self._validate_run(msg)
        except ValueError as exc:
            self.send(conn, {'id': msg.get('id'), 'event': 'error', 'error': str(exc)})
            return
        if self.draining:
            self.send(conn, {'id': req['id'], 'event': 'stale', 'reason': self.draining, 'changed': []})
            return
        changed = self.watcher.changed()
        if changed:
            self.send(conn, {'id': req['id'], 'event': 'stale', 'reason': 'changed', 'changed': changed})
            self._drain('changed')
            return
        reason = self._cold_reason(req)
        if reason:
            self.send(conn, {'id': req['id'], 'event': 'cold', 'reason': reason})
            return
        if any(child.id == req['id'] for child in self.children.values()):
            self.send(conn, {'id': req['id'], 'event': 'error', 'error': 'a run with this id is already running'})
            return
        try:
            self._fork(conn, req)
        except OSError as exc:  # EAGAIN/ENOMEM from fork(), EMFILE from pipe()
            self.send(conn, {'id': req['id'], 'event': 'error', 'error': 'cannot start: %s' % one_line(exc)})

    def _fork(self, conn, req):
        from django.db import connections
        # Never share a database connection with a child; never duplicate buffered output.
        connections.close_all()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        # Objects alive now move to the garbage collector's permanent generation: the
        # children's collections then skip them, so their pages stay shared with this
        # process (copy-on-write) and a child's exit does not spend tens of ms collecting
        # Django's heap. Cyclic garbage among these objects is then never collected in a child.
        gc.freeze()
        status_r, status_w = os.pipe()  # non-inheritable
        try:
            pid = os.fork()
        except OSError:
            os.close(status_r)
            os.close(status_w)
            raise
        if pid == 0:
            os.close(status_r)
            raise Forked(req, status_w)
        os.close(status_w)
        # The child writes one byte once it has its own session, so that when "started"
        # arrives, kill(-pid) already reaches the whole group.
        try:
            os.read(status_r, 1)
        except OSError:
            pass
        self.children[pid] = Child(req['id'], conn, status_r)
        self.send(conn, {'id': req['id'], 'event': 'started', 'pid': pid})

    @staticmethod
    def _op_fifos(msg):
        folder, count = msg.get('dir'), msg.get('count')
        if not isinstance(folder, str) or not os.path.isabs(folder):
            return {'event': 'error', 'error': '"dir" must be an absolute path'}
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 16:
            return {'event': 'error', 'error': '"count" must be an integer from 1 to 16'}
        made = []
        try:
            for _ in range(count * 2):
                path = os.path.join(folder, os.urandom(16).hex())
                os.mkfifo(path, 0o600)
                made.append(path)
                os.chmod(path, 0o600)  # whatever the umask
        except OSError as exc:
            for path in made:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            return {'event': 'error', 'error': 'cannot make FIFOs in %s: %s' % (folder, exc.strerror or exc)}
        paths = [[made[i], made[i + 1]] for i in range(0, len(made), 2)]
        return {'event': 'fifos', 'paths': paths}

    def _op_signal(self, conn, msg):
        run_id = msg.get('id')
        number = _signal_number(msg.get('signal', 'SIGTERM'))
        if number is None:
            self.send(conn, {'id': run_id, 'event': 'error', 'error': 'unknown signal %r' % (msg.get('signal'),)})
            return
        for pid, child in self.children.items():
            if child.id == run_id:
                try:
                    if msg.get('group', True):
                        os.killpg(pid, number)
                    else:
                        os.kill(pid, number)
                except OSError as exc:
                    self.send(conn, {'id': run_id, 'event': 'error', 'error': 'kill failed: %s' % exc})
                    return
                self.send(conn, {'id': run_id, 'event': 'signalled', 'signal': number})
                return
        self.send(conn, {'id': run_id, 'event': 'error', 'error': 'no running run with this id'})

    def _reap(self):
        for pid in list(self.children):
            try:
                got, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                got, status = pid, None
            if got == 0:
                continue
            child = self.children.pop(pid)
            doc = {'id': child.id, 'event': 'exited', 'pid': pid,
                   'exit_code': _exit_code(status) if status is not None else None}
            # Anything the child wrote after its "session ready" byte is a set-up error.
            detail = b''
            try:
                os.set_blocking(child.status_fd, False)
                while True:
                    chunk = os.read(child.status_fd, 65536)
                    if not chunk:
                        break
                    detail += chunk
            except OSError:
                pass
            os.close(child.status_fd)
            if detail:
                doc['error'] = detail.decode('utf-8', 'replace')
            self.send(child.conn, doc)

    def _drain(self, reason):
        if self.draining:
            return
        self.draining = reason
        self._stop_listening()

    def _stop_listening(self):
        if self.listener is None:
            return
        if self.selector is not None:
            try:
                self.selector.unregister(self.listener)
            except (KeyError, ValueError):
                pass
        self.listener.close()
        self.listener = None
        try:  # only if it is still ours: a new warm process may have taken the path
            if os.stat(self.socket_path).st_ino == self.socket_inode:
                os.unlink(self.socket_path)
        except OSError:
            pass

    def shutdown(self):
        self._stop_listening()
        for conn in list(self.conns.values()):
            try:
                conn.sock.setblocking(True)
                conn.sock.settimeout(1.0)
                if conn.outbuf:
                    conn.sock.sendall(conn.outbuf)
            except OSError:
                pass
            self._close(conn)

    def kill_children(self):
        """Leaving while children run: nobody could report their end, so they go too."""
        killed = []
        for pid, child in self.children.items():
            try:
                os.killpg(pid, signal.SIGKILL)  # not reaped yet: pid cannot be another's
            except OSError:
                pass
            killed.append(child.id)
        return killed

    def close_in_child(self):
        """Drop every resource of the warm process in a forked child (no unlink!)."""
        signal.set_wakeup_fd(-1)
        for conn in list(self.conns.values()):
            conn.sock.close()
        for child in self.children.values():
            os.close(child.status_fd)
        if self.listener is not None:
            self.listener.close()
        self.selector.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        os.close(self.proto_fd)


# --------------------------------------------------------------------------- the child

def _restore_signals():
    for sig, handler in _ORIGINAL_SIGNALS.items():
        try:
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        except (OSError, ValueError, TypeError):
            pass


def _attach_stdio(stdout_path, stderr_path):
    """/dev/null on fd 0, the FIFOs on fds 1 and 2, under the existing sys.std* objects.

    The interpreter built sys.stdin/stdout/stderr for this process from the same rules and
    environment a cold `python manage.py` uses (encoding, errors, names), so keeping those
    objects and swapping the fds under them keeps every such detail. Their buffers are
    empty: the warm process flushed them just before fork().
    """
    opened = [os.open(os.devnull, os.O_RDONLY)]
    # Blocks until the runner has the read end open (it should, before sending "run").
    opened.append(os.open(stdout_path, os.O_WRONLY))
    if stderr_path == stdout_path:
        opened.append(opened[1])
    else:
        opened.append(os.open(stderr_path, os.O_WRONLY))
    for target, fd in enumerate(opened):
        os.dup2(fd, target)  # inheritable, as fds 0-2 are
    for fd in set(opened):
        if fd > 2:
            os.close(fd)
    for stream in (sys.stdout, sys.stderr):
        # Line-buffered even though not a terminal, so output streams live. This changes
        # when bytes leave, never which bytes. With PYTHONUNBUFFERED (write_through) the
        # interpreter's own unbuffered set-up is kept.
        if stream is not None and not getattr(stream, 'write_through', False) and hasattr(stream, 'reconfigure'):
            try:
                stream.reconfigure(line_buffering=True)
            except Exception:
                pass


def _apply_env(env):
    for name, value in env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _set_argv(command, argv):
    sys.argv = ['manage.py', command] + argv
    orig = getattr(sys, 'orig_argv', None)  # 3.10+: the interpreter options stay as they are
    if orig:
        script = os.path.abspath(__file__)
        for i, arg in enumerate(orig):
            if arg.endswith('bootstrap.py') and os.path.abspath(arg) == script:
                sys.orig_argv = orig[:i] + sys.argv
                break


def _systemexit_status(exc):
    """The exit status the interpreter derives from an uncaught SystemExit."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        if not -(1 << 63) <= code < (1 << 63):
            return 255  # PyLong_AsLong overflows to -1
        return code & 0xFF
    # Like the interpreter: print the object itself on stderr and exit with 1.
    try:
        if sys.stderr is not None:
            sys.stderr.write(str(code))
            sys.stderr.write('\n')
    except Exception:
        pass
    return 1


def _trimmed(tb, entry_code):
    """tb without the bootstrap's frames: from the frame running entry_code on."""
    start = tb
    while start is not None and start.tb_frame.f_code is not entry_code:
        start = start.tb_next
    return start if start is not None else tb


def _print_uncaught(exc, entry_code):
    # The exception's own __traceback__ is what newer Pythons print (the tb argument only
    # counts when it has none), so that is where the bootstrap's frames are cut off.
    tb = _trimmed(exc.__traceback__, entry_code)
    exc.__traceback__ = tb
    try:
        sys.excepthook(type(exc), exc, tb)
    except BaseException:
        try:
            traceback.print_exception(type(exc), exc, tb)
        except BaseException:
            pass


def _finalize_like_interpreter():
    """What Py_FinalizeEx does before tearing modules down: join non-daemon threads, run
    atexit handlers, flush stdout then stderr. Returns False when stdout could not be
    flushed (the interpreter then reports it and exits with 120)."""
    import atexit
    import threading
    try:
        threading._shutdown()
    except Exception:
        pass
    try:
        atexit._run_exitfuncs()
    except Exception:
        pass
    ok = True
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except Exception as exc:
        ok = False
        try:
            sys.stderr.write('Exception ignored in: %r\n' % (sys.stdout,))
            sys.stderr.write(''.join(traceback.format_exception_only(type(exc), exc)))
        except Exception:
            pass
    try:
        if sys.stderr is not None:
            sys.stderr.flush()
    except Exception:
        pass
    return ok


def _fast_exit(status):
    """Exit without the interpreter's module teardown ("fast_exit": true).

    In a forked child the teardown costs ~50 ms: every object's reference count is
    written, which copies every shared page. What it would still have done that matters
    is flushing file objects left open; do that for the files this child opened (objects
    the warm process made are frozen and not listed by gc.get_objects()).
    """
    import io
    if not _finalize_like_interpreter():
        status = 120
    objects = gc.get_objects()
    for kinds in ((io.TextIOWrapper,), (io.BufferedWriter, io.BufferedRandom)):
        for obj in objects:
            if isinstance(obj, kinds):
                try:
                    if not obj.closed:
                        obj.flush()
                except Exception:
                    pass
    os._exit(status)


def run_child(forked, server):
    """In the forked child: become the command. Returns the exit status."""
    req = forked.request
    status_fd = forked.status_fd
    try:
        os.setsid()  # own session and process group: pid == pgid == sid
        # Dies with the warm process: a command must not run on where nobody sees it.
        set_parent_death_signal(signal.SIGKILL, server.pid)
        os.write(status_fd, b'S')
        server.close_in_child()
        _restore_signals()
        _apply_env(req['env'])
        _attach_stdio(req['stdout'], req['stderr'])
        _set_argv(req['command'], req['argv'])
        if req['read_only']:
            # Before any command code: no connection of the warm process is reused, and every
            # connection this child opens is read-only.
            _drop_inherited_connections()
            enable_read_only()
        # Read fresh for every run (so it is not watched): an edited manage.py applies.
        manage = os.path.join(PROJECT_DIR, 'manage.py')
        source = None
        if os.path.isfile(manage):
            with open(manage, 'rb') as handle:
                source = handle.read()
    except BaseException as exc:
        try:
            os.write(status_fd, ('%s\n' % one_line(exc)).encode('utf-8', 'replace'))
        finally:
            os._exit(127)
    os.close(status_fd)
    # Python 3.9+ makes a script's path absolute; 3.8 kept it as given on the command line.
    filename = manage if sys.version_info >= (3, 9) else 'manage.py'
    status = _run_entry(source, filename)
    if req['read_only']:
        status = _read_only_status(status)
    if req['fast_exit']:
        _fast_exit(status)
    return status  # the interpreter exits with it and finalizes, as after a cold run


def _run_entry(source, filename):
    """Run manage.py (or execute_from_command_line) as `python manage.py` would."""
    import types
    if source is not None:
        try:
            code = compile(source, filename, 'exec', dont_inherit=True)
        except (SyntaxError, ValueError) as exc:
            # The interpreter reports a script it cannot compile without a traceback.
            exc.__traceback__ = None
            _print_uncaught(exc, None)
            return 1
        from importlib.machinery import SourceFileLoader
        import builtins
        module = types.ModuleType('__main__')
        module.__dict__.update({
            '__file__': code.co_filename,
            '__builtins__': builtins,
            '__loader__': SourceFileLoader('__main__', code.co_filename),
            '__spec__': None,
            '__package__': None,
            '__cached__': None,
        })
        sys.modules['__main__'] = module  # this file's module stays alive through its functions

        def run():
            exec(code, module.__dict__)
        entry_code = code
    else:
        from django.core.management import execute_from_command_line

        def run():
            execute_from_command_line(sys.argv)
        entry_code = execute_from_command_line.__code__
    try:
        run()
    except SystemExit as exc:
        return _systemexit_status(exc)
    except KeyboardInterrupt as exc:
        # Python 3.8+ prints the traceback, finalizes, then dies of SIGINT itself.
        _print_uncaught(exc, entry_code)
        _finalize_like_interpreter()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        os._exit(130)
    except BaseException as exc:
        _print_uncaught(exc, entry_code)
        return 1
    return 0


def mode_warm(args, proto_fd):
    if len(args) != 1:
        raise BootstrapError('bad_usage', 'usage: bootstrap.py warm SOCKET_PATH')
    server = WarmServer(args[0], proto_fd)
    # Leaves (and kills its children) when the runner dies, even before its loop watches stdin.
    set_parent_death_signal(signal.SIGTERM, server.ppid)
    try:
        server.start()
    except BaseException:
        server._stop_listening()
        raise
    write_all(proto_fd, encode_line(server.ready_doc()))
    forked = server.serve()
    if forked is not None:
        # We are a child now; the return value becomes the interpreter's exit status
        # and the interpreter then finalizes normally, like a cold run.
        return run_child(forked, server)
    killed = server.kill_children()
    server.shutdown()
    try:
        write_all(proto_fd, encode_line({'event': 'exiting', 'pid': server.pid, 'reason': server.exit_reason,
                                         'killed': killed}))
    except OSError:
        pass  # the runner is gone
    return 0


# --------------------------------------------------------------------------- main

def main(argv):
    try:
        proto_fd = take_protocol_stdout()
    except OSError:
        return 1  # no stdout at all: nobody to talk to
    mode = argv[0] if argv else None
    try:
        if mode == 'settings' and len(argv) == 1:
            result = mode_settings()
        elif mode == 'commands' and len(argv) == 1:
            result = mode_commands()
        elif mode == 'warm':
            return mode_warm(argv[1:], proto_fd)
        else:
            raise BootstrapError('bad_usage', 'usage: bootstrap.py settings | commands | warm SOCKET_PATH')
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        doc = error_doc(exc)
        if isinstance(exc, SystemExit):  # a settings module calling sys.exit()
            doc = {'ok': False, 'code': 'setup_failed', 'error': 'SystemExit(%r) while loading the project' % (exc.code,),
                   'traceback': traceback.format_exc()}
        if mode == 'warm':
            doc['event'] = 'error'
        try:
            write_all(proto_fd, encode_line(doc))
        except OSError:
            pass
        return 2 if doc['code'] == 'bad_usage' else 1
    write_all(proto_fd, encode_line(result))
    return 0


if __name__ == '__main__':
    if sys.argv[1:2] == ['run-read-only']:  # stdout stays the command's: no protocol here
        sys.exit(mode_run_read_only(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
