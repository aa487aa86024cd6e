import time

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = 'Print "sleeping" and then sleep until killed (default signal handling), for cancel tests.'

    def handle(self, *args, **options):
        self.stdout.write('sleeping')
        self.stdout.flush()
        while True:
            time.sleep(3600)
