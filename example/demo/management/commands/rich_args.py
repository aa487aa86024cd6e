import json

from django.core.management.base import BaseCommand

# Options every Django command has, left out so the printed JSON only shows ours.
# stdout/stderr appear when the command is run through call_command().
DJANGO_OPTIONS = {
    'verbosity', 'settings', 'pythonpath', 'traceback', 'no_color', 'force_color',
    'skip_checks', 'stdout', 'stderr',
}


class Command(BaseCommand):
    help = 'Parse a rich set of arguments and print what arrived as JSON with sorted keys.'

    def add_arguments(self, parser):
        parser.add_argument('target', help='required positional argument')
        parser.add_argument('extra', nargs='*', help='any number of further positional arguments')
        parser.add_argument('--count', type=int, default=1, help='an integer (default 1)')
        parser.add_argument('--ratio', type=float, help='a float')
        parser.add_argument('--mode', choices=['fast', 'safe'], default='safe', help='fast or safe (default safe)')
        parser.add_argument('--dry-run', action='store_true', help='a flag')
        parser.add_argument('--tag', action='append', help='may be given several times')
        parser.add_argument('--level', required=False, help='an optional string')
        output = parser.add_mutually_exclusive_group()
        output.add_argument('--verbose-output', action='store_true', help='cannot be combined with --quiet-output')
        output.add_argument('--quiet-output', action='store_true', help='cannot be combined with --verbose-output')

    def handle(self, *args, **options):
        received = {k: v for k, v in options.items() if k not in DJANGO_OPTIONS}
        self.stdout.write(json.dumps(received, sort_keys=True, default=str))
