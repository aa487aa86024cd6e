import os
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        'Print the SECRET_KEY and the default database password: whole, split across two '
        'flushed writes with a pause between them, and one character per flush (on stdout and '
        'stderr). Shows that the runner scrubs secrets before output leaves the host.'
    )

    def add_arguments(self, parser):
        parser.add_argument('--pause', type=float, default=0.3, help='seconds between the halves of a split secret')
        # Not an argparse default: defaults are part of the command list the runner sends.
        parser.add_argument('--extra', help='a line to print as well, e.g. a token matching DJANGOCOMMAND_REDACT_PATTERNS (default: $EXAMPLE_PRINT_EXTRA)')

    def handle(self, *args, **options):
        key = settings.SECRET_KEY
        password = settings.DATABASES['default'].get('PASSWORD', '')
        pause = max(0.0, options['pause'])

        def write(stream, text):
            stream.write(text)
            stream.flush()

        write(sys.stdout, 'SECRET_KEY=%s\n' % key)
        half = len(key) // 2
        write(sys.stdout, 'split key: ' + key[:half])
        time.sleep(pause)
        write(sys.stdout, key[half:] + ' (end)\n')
        write(sys.stderr, 'db password: ' + password[:3])
        time.sleep(pause)
        write(sys.stderr, password[3:] + '\n')
        write(sys.stdout, 'one by one: ')
        for ch in password:
            write(sys.stdout, ch)
        write(sys.stdout, '\n')
        extra = options['extra'] or os.environ.get('EXAMPLE_PRINT_EXTRA', '')
        if extra:
            write(sys.stdout, 'extra: %s\n' % extra)
        write(sys.stdout, 'done\n')
