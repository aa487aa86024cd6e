import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = 'Ask a question and read one line from stdin; with no input, say so on stderr and exit 2.'

    def handle(self, *args, **options):
        self.stdout.write('What is your name? ', ending='')
        self.stdout.flush()
        try:
            answer = input()
        except EOFError:
            self.stdout.write('\n', ending='')
            self.stdout.flush()
            self.stderr.write('no input available')
            self.stderr.flush()
            sys.exit(2)
        self.stdout.write(f'hello, {answer}')
