from django.core.management.base import BaseCommand

RESET = '\x1b[0m'
BOLD = '\x1b[1m'
RED = '\x1b[31m'
GREEN = '\x1b[32m'
YELLOW = '\x1b[33m'


class Command(BaseCommand):
    help = (
        'Print unicode text and ANSI colour escapes on stdout and stderr. The escapes are '
        'written even when the output is not a terminal, unless --no-color is given.'
    )

    def handle(self, *args, **options):
        plain = options['no_color']

        def paint(code, text):
            return text if plain else f'{code}{text}{RESET}'

        self.stdout.write('héllo wörld ✓ 日本語 🎉')
        self.stdout.write(f"{paint(RED, 'red')} {paint(GREEN, 'green')} {paint(BOLD, 'bold')}")
        self.stdout.flush()
        self.stderr.write(paint(YELLOW, 'warning: ünïcödé on stderr ⚠'))
        self.stderr.write(paint(RED, '✗ error line'))
        self.stderr.flush()
        self.stdout.write(paint(BOLD + GREEN, '✓ all colours printed'))
        self.stdout.flush()
