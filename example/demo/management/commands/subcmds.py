import json

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = 'A command with subcommands ("add NAME", "remove NAME [--force]"); prints what ran as JSON.'

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest='action', required=True, metavar='{add,remove}')
        # Passing called_from_command_line makes a bad subcommand argument print usage and
        # exit 2 on Django < 5.0 too (5.0 passes it to subparsers itself).
        from_cli = parser.called_from_command_line
        add = sub.add_parser('add', help='add NAME', called_from_command_line=from_cli)
        add.add_argument('name', help='what to add')
        remove = sub.add_parser('remove', help='remove NAME', called_from_command_line=from_cli)
        remove.add_argument('name', help='what to remove')
        remove.add_argument('--force', action='store_true', help='remove without asking')

    def handle(self, *args, **options):
        ran = {'action': options['action'], 'name': options['name']}
        if options['action'] == 'remove':
            ran['force'] = options['force']
        self.stdout.write(json.dumps(ran, sort_keys=True))
