#!/usr/bin/env python3
"""Exercise bootstrap.py's read-only database mode on the example project, and report facts.

    /usr/bin/python3 test/python/read_only_check.py cold|warm|api

The environment chooses the database exactly as the example settings read it (EXAMPLE_DB_PATH
for SQLite, DJANGOCOMMAND_EXAMPLE_DATABASE_URL for PostgreSQL; EXAMPLE_SECOND_DB_PATH adds a
second SQLite alias). The database must be migrated. Prints ONE JSON document on stdout with
what happened (exit codes, output, row counts before and after); the vitest test
(test/python/readOnly.test.ts) holds the expectations. Standard library + Django only.

cold: `python bootstrap.py run-read-only write_notes HOW` per way (what the runner starts for a
      cold read-only run), and the same command writable for comparison.
warm: one `bootstrap.py warm SOCK` process; each way run with "read_only": true, then writable
      runs in the same warm process (the mode must not leak from one fork to the next).
api:  in this process: enable_read_only()/disable_read_only()/read_only_active()/ReadOnlyError
      as the shell uses them, the database's own layer (writes through the driver, bypassing
      Django), other threads, other aliases, and write_statement() on a table of SQL.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BOOTSTRAP_DIR = os.path.join(REPO, 'src', 'runner', 'python')
BOOTSTRAP = os.path.join(BOOTSTRAP_DIR, 'bootstrap.py')
EXAMPLE = os.path.join(REPO, 'example')
PYTHON = sys.executable

WRITES = ('create', 'update', 'delete', 'bulk_create', 'raw_insert', 'executemany', 'cte_insert', 'select_for_update', 'swallow')
READS = ('count', 'read_in_transaction')


def env():
    e = dict(os.environ)
    e['PYTHONUNBUFFERED'] = '1'
    e['DJANGO_SETTINGS_MODULE'] = 'exampleproject.settings'
    return e


def count_rows(alias='default'):
    """Rows of demo_note, read with the driver directly (no Django, no read-only mode)."""
    url = os.environ.get('DJANGOCOMMAND_EXAMPLE_DATABASE_URL')
    if alias == 'default' and url:
        import psycopg2
        conn = psycopg2.connect(url)
        try:
            cur = conn.cursor()
            cur.execute('SELECT count(*) FROM demo_note')
            return cur.fetchone()[0]
        finally:
            conn.close()
    import sqlite3
    path = os.environ['EXAMPLE_DB_PATH'] if alias == 'default' else os.environ['EXAMPLE_SECOND_DB_PATH']
    conn = sqlite3.connect(path)
    try:
        return conn.execute('SELECT count(*) FROM demo_note').fetchone()[0]
    finally:
        conn.close()


def tables():
    url = os.environ.get('DJANGOCOMMAND_EXAMPLE_DATABASE_URL')
    if url:
        import psycopg2
        conn = psycopg2.connect(url)
        try:
            cur = conn.cursor()
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            return [r[0] for r in cur.fetchall()]
        finally:
            conn.close()
    import sqlite3
    conn = sqlite3.connect(os.environ['EXAMPLE_DB_PATH'])
    try:
        return [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
    finally:
        conn.close()


def run(argv):
    p = subprocess.run([PYTHON] + argv, cwd=EXAMPLE, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return {'exit': p.returncode, 'stdout': p.stdout.decode('utf-8', 'replace'), 'stderr': p.stderr.decode('utf-8', 'replace')}


def case(label, argv):
    before = count_rows()
    result = run(argv)
    result.update({'case': label, 'before': before, 'after': count_rows()})
    return result


def mode_cold():
    out = []
    for how in READS + WRITES:
        out.append(case('read-only ' + how, [BOOTSTRAP, 'run-read-only', 'write_notes', how]))
    before_tables = tables()
    migrate = case('read-only migrate demo zero', [BOOTSTRAP, 'run-read-only', 'migrate', 'demo', 'zero'])
    migrate['tables_unchanged'] = tables() == before_tables
    out.append(migrate)
    out.append(case('writable create', ['manage.py', 'write_notes', 'create']))
    out.append(case('writable raw_insert', ['manage.py', 'write_notes', 'raw_insert']))
    return out


# ----------------------------------------------------------------------------- warm

class Warm:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='dc-ro-warm-')
        self.sock_path = os.path.join(self.dir, 'w.sock')
        self.proc = subprocess.Popen([PYTHON, BOOTSTRAP, 'warm', self.sock_path], cwd=EXAMPLE, env=env(),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        ready = json.loads(self.proc.stdout.readline().decode())
        if ready.get('event') != 'ready':
            raise SystemExit('warm process did not start: %r %s' % (ready, self.proc.stderr.read().decode()))
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.sock_path)
        self.reader = self.sock.makefile('rb')
        self.n = 0

    def run(self, how, read_only):
        self.n += 1
        out_path = os.path.join(self.dir, 'out%d' % self.n)
        err_path = os.path.join(self.dir, 'err%d' % self.n)
        os.mkfifo(out_path)
        os.mkfifo(err_path)
        fds = {name: os.open(path, os.O_RDONLY | os.O_NONBLOCK) for name, path in (('stdout', out_path), ('stderr', err_path))}
        chunks = {'stdout': [], 'stderr': []}
        stop = threading.Event()

        def pump():
            # Small outputs, but never let the child block on a full pipe.
            while not stop.is_set():
                for name, fd in fds.items():
                    try:
                        data = os.read(fd, 65536)
                    except BlockingIOError:
                        continue
                    if data:
                        chunks[name].append(data)
                time.sleep(0.005)
        t = threading.Thread(target=pump, daemon=True)
        t.start()
        msg = {'op': 'run', 'id': 'r%d' % self.n, 'command': 'write_notes', 'argv': [how], 'stdout': out_path, 'stderr': err_path}
        if read_only:
            msg['read_only'] = True
        self.sock.sendall((json.dumps(msg) + '\n').encode())
        exit_code = None
        while exit_code is None:
            event = json.loads(self.reader.readline().decode())
            if event.get('event') == 'exited':
                exit_code = event['exit_code']
            elif event.get('event') not in ('started',):
                raise SystemExit('unexpected warm event %r' % event)
        time.sleep(0.05)
        stop.set()
        t.join()
        for name, fd in fds.items():
            while True:
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not data:
                    break
                chunks[name].append(data)
            os.close(fd)
        return {'exit': exit_code, 'stdout': b''.join(chunks['stdout']).decode('utf-8', 'replace'),
                'stderr': b''.join(chunks['stderr']).decode('utf-8', 'replace')}

    def close(self):
        self.sock.close()
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


def mode_warm():
    warm = Warm()
    out = []
    try:
        for how in READS + WRITES:
            before = count_rows()
            r = warm.run(how, True)
            r.update({'case': 'read-only ' + how, 'before': before, 'after': count_rows()})
            out.append(r)
        # Writable forks of the same warm process, after read-only ones: the mode does not leak.
        for how in ('create', 'raw_insert'):
            before = count_rows()
            r = warm.run(how, False)
            r.update({'case': 'writable ' + how, 'before': before, 'after': count_rows()})
            out.append(r)
        before = count_rows()
        r = warm.run('create', True)
        r.update({'case': 'read-only create again', 'before': before, 'after': count_rows()})
        out.append(r)
    finally:
        warm.close()
    return out


# ----------------------------------------------------------------------------- api

def mode_api():
    sys.path.insert(0, EXAMPLE)
    sys.path.insert(0, BOOTSTRAP_DIR)
    os.chdir(EXAMPLE)
    os.environ['DJANGO_SETTINGS_MODULE'] = 'exampleproject.settings'
    import django
    django.setup()
    import bootstrap
    from django.db import DatabaseError, connection, connections, transaction
    from demo.models import Note

    facts = {}

    def attempt(fn):
        try:
            value = fn()
            return {'ok': True, 'value': value}
        except Exception as exc:
            return {'ok': False, 'type': type(exc).__name__, 'read_only_error': isinstance(exc, bootstrap.ReadOnlyError),
                    'database_error': isinstance(exc, DatabaseError), 'message': str(exc)}

    def raw_insert_through_driver():
        # Below Django: the database's own read-only session setting must refuse it.
        connection.ensure_connection()
        cursor = connection.connection.cursor()
        cursor.execute("INSERT INTO demo_note (text, created_at) VALUES ('driver', CURRENT_TIMESTAMP)")
        if connection.vendor == 'sqlite':
            connection.connection.commit()
        return 'inserted'

    facts['vendor'] = connection.vendor
    facts['active_before'] = bootstrap.read_only_active()
    connection.ensure_connection()  # an open connection before enabling: it must be switched too
    bootstrap.enable_read_only()
    bootstrap.enable_read_only()  # idempotent
    facts['active'] = bootstrap.read_only_active()
    before = count_rows()
    facts['orm_create'] = attempt(lambda: Note.objects.create(text='api').pk)
    facts['driver_insert'] = attempt(raw_insert_through_driver)
    facts['set_read_write'] = attempt(lambda: connection.cursor().execute(
        'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE' if connection.vendor == 'postgresql' else 'PRAGMA query_only = OFF'))

    def reads_in_transaction():
        with transaction.atomic():
            a = Note.objects.count()
            with transaction.atomic():
                b = Note.objects.filter(text__startswith='').count()
            return [a, b]
    facts['reads_in_transaction'] = attempt(reads_in_transaction)
    if connection.vendor == 'postgresql':
        from psycopg2 import sql as pgsql

        def composed(template):
            with connection.cursor() as cursor:
                cursor.execute(pgsql.SQL(template).format(pgsql.Identifier('demo_note')))
                return cursor.fetchone()[0] if cursor.description else None
        facts['composed_select'] = attempt(lambda: composed('SELECT count(*) FROM {}'))
        facts['composed_insert'] = attempt(lambda: composed("INSERT INTO {} (text, created_at) VALUES ('c', now())"))

    def write_in_savepoint_then_read():
        with transaction.atomic():
            try:
                with transaction.atomic():
                    Note.objects.create(text='sp')
            except bootstrap.ReadOnlyError:
                pass
            return Note.objects.count()
    facts['write_in_savepoint_then_read'] = attempt(write_in_savepoint_then_read)
    connections.close_all()
    facts['after_reconnect_orm'] = attempt(lambda: Note.objects.create(text='reconnected').pk)
    facts['after_reconnect_driver'] = attempt(raw_insert_through_driver)

    thread_result = {}

    def in_thread():
        thread_result['orm'] = attempt(lambda: Note.objects.create(text='thread').pk)
        thread_result['driver'] = attempt(raw_insert_through_driver)
        connections.close_all()
    t = threading.Thread(target=in_thread)
    t.start()
    t.join()
    facts['thread'] = thread_result
    if 'second' in connections:
        second_before = count_rows('second')
        facts['second_alias'] = attempt(lambda: Note.objects.using('second').create(text='second').pk)
        facts['second_alias_rows'] = [second_before, count_rows('second')]
    facts['rows_while_read_only'] = [before, count_rows()]

    bootstrap.disable_read_only()
    facts['active_after_disable'] = bootstrap.read_only_active()
    facts['orm_create_writable'] = attempt(lambda: Note.objects.create(text='writable').pk)
    facts['driver_insert_writable'] = attempt(raw_insert_through_driver)
    facts['rows_after_writable'] = [before, count_rows()]
    bootstrap.enable_read_only(hint='call writable("reason") to ask for a writable shell')
    facts['orm_create_again'] = attempt(lambda: Note.objects.create(text='again').pk)
    bootstrap.disable_read_only()

    samples = [
        'SELECT 1', 'select * from t where a = %s', 'WITH x AS (SELECT 1) SELECT * FROM x', 'EXPLAIN SELECT 1',
        'SAVEPOINT "s1"', 'RELEASE SAVEPOINT "s1"', 'ROLLBACK TO SAVEPOINT "s1"', 'BEGIN', 'COMMIT',
        'PRAGMA table_info("demo_note")', "SELECT 'insert into x' AS text", 'SELECT "update" FROM t',
        '/* INSERT */ SELECT 1 -- DELETE', 'SET search_path TO public', 'SHOW TIME ZONE',
        "SELECT replace(text, 'a', 'b') FROM demo_note", 'SET TRANSACTION ISOLATION LEVEL READ COMMITTED',
        'INSERT INTO t VALUES (1)', '  update t set a = 1', 'DELETE FROM t', 'REPLACE INTO t VALUES (1)',
        'CREATE TABLE x (a int)', 'ALTER TABLE t ADD b int', 'DROP TABLE t', 'TRUNCATE t',
        'WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d', 'SELECT * FROM t FOR UPDATE',
        'SELECT * FROM t FOR NO KEY UPDATE', 'SELECT * FROM t FOR SHARE', 'SELECT * INTO t2 FROM t',
        'SELECT 1; DELETE FROM t', 'SET default_transaction_read_only = off',
        'SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE', 'BEGIN READ WRITE',
        'PRAGMA query_only = OFF', 'PRAGMA query_only(0)', "SELECT set_config('default_transaction_read_only', 'off', false)",
        "SELECT nextval('s')", 'GRANT ALL ON t TO x', 'COPY t FROM STDIN', 'VACUUM', 'RESET ALL', 'DISCARD ALL',
        'LOCK TABLE t', 'CALL p()', 'DO $$ BEGIN INSERT INTO t VALUES (1); END $$', 'UPSERT INTO t VALUES (1)',
        'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE',
    ]
    facts['write_statement'] = {sql: bootstrap.write_statement(sql) for sql in samples}
    return facts


if __name__ == '__main__':
    which = sys.argv[1] if len(sys.argv) > 1 else ''
    if which == 'cold':
        result = mode_cold()
    elif which == 'warm':
        result = mode_warm()
    elif which == 'api':
        result = mode_api()
    else:
        raise SystemExit('usage: read_only_check.py cold|warm|api')
    sys.stdout.write(json.dumps(result) + '\n')
