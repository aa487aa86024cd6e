from django.core.management.base import BaseCommand

from demo.models import Note


class Command(BaseCommand):
    help = 'Create a Note row (a database side effect for tests) and print the number of notes.'

    def add_arguments(self, parser):
        parser.add_argument('--text', default='hello', help='text of the note (default "hello")')

    def handle(self, *args, **options):
        Note.objects.create(text=options['text'])
        self.stdout.write(str(Note.objects.count()))
