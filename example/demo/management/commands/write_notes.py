from django.core.management.base import BaseCommand, CommandError
from django.db import connections, transaction

from demo.models import Note

WAYS = ('count', 'create', 'update', 'delete', 'bulk_create', 'raw_insert', 'executemany',
        'cte_insert', 'select_for_update', 'read_in_transaction', 'swallow')


class Command(BaseCommand):
    help = ('Touch Note rows in one of several ways (writes through the ORM and raw SQL, or reads '
            'in transactions), then print the number of notes: for the read-only mode tests.')

    def add_arguments(self, parser):
        parser.add_argument('how', choices=WAYS, help='what to do: %s' % ', '.join(WAYS))
        parser.add_argument('--database', default='default', help='database alias (default "default")')

    def handle(self, *args, **options):
        how, db = options['how'], options['database']
        notes = Note.objects.using(db)
        table = Note._meta.db_table
        if how == 'create':
            notes.create(text='created')
        elif how == 'update':
            notes.update(text='updated')
        elif how == 'delete':
            notes.all().delete()
        elif how == 'bulk_create':
            notes.bulk_create([Note(text='bulk 1'), Note(text='bulk 2')])
        elif how == 'raw_insert':
            with connections[db].cursor() as cursor:
                cursor.execute('INSERT INTO %s (text, created_at) VALUES (%%s, CURRENT_TIMESTAMP)' % table, ['raw'])
        elif how == 'executemany':
            with connections[db].cursor() as cursor:
                cursor.executemany('INSERT INTO %s (text, created_at) VALUES (%%s, CURRENT_TIMESTAMP)' % table,
                                   [['many 1'], ['many 2']])
        elif how == 'cte_insert':
            with connections[db].cursor() as cursor:
                cursor.execute('WITH made AS (INSERT INTO %s (text, created_at) VALUES (%%s, CURRENT_TIMESTAMP) '
                               'RETURNING id) SELECT count(*) FROM made' % table, ['cte'])
        elif how == 'select_for_update':
            with transaction.atomic(using=db):
                list(notes.select_for_update().all())
        elif how == 'read_in_transaction':
            with transaction.atomic(using=db):
                first = notes.count()
                with transaction.atomic(using=db):  # a savepoint
                    second = notes.filter(text__startswith='').count()
                if first != second:
                    raise CommandError('counts differ: %d, %d' % (first, second))
        elif how == 'swallow':
            try:
                notes.create(text='swallowed')
            except Exception as exc:  # a command that hides its errors
                self.stderr.write('ignored: %s' % exc)
        self.stdout.write(str(notes.count()))
