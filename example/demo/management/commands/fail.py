import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = 'Fail on purpose: optionally print some stdout lines, write a message to stderr, exit with --code.'

    def add_arguments(self, parser):
        parser.add_argument('--message', default='demo failure', help='written to stderr (default "demo failure")')
        parser.add_argument('--code', type=int, default=3, help='exit code (default 3)')
        parser.add_argument(
            '--after-lines', type=int, default=0, metavar='N',
            help='print N stdout lines ("line 1" ... "line N") before failing (default 0)',
        )

    def handle(self, *args, **options):
        for n in range(1, options['after_lines'] + 1):
            self.stdout.write(f'line {n}')
        self.stdout.flush()
        self.stderr.write(options['message'])
        self.stderr.flush()
        # sys.exit rather than CommandError(returncode=...), which only exists from Django 3.1.
        sys.exit(options['code'])
