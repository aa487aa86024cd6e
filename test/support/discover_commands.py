"""
List a Django project's management commands the way the Python runner discovers them.

Run with the project directory as the working directory (or pass it as the first argument)
and DJANGO_SETTINGS_MODULE set. Prints a JSON list of {name, app_label, help_text} on stdout;
with --with-versions it prints {"python_version", "django_version", "commands": [...]}
instead, which is what V1Runner needs for its heartbeats.

help_text is the full argparse help (`manage.py <name> --help`), so it depends on the
terminal width: set COLUMNS for reproducible hashes. Standard library + Django only, works on
Django 3.2 to 5.x.
"""
import json
import os
import platform
import sys


def main(argv):
    with_versions = '--with-versions' in argv
    positional = [arg for arg in argv if not arg.startswith('--')]
    project_dir = os.path.abspath(positional[0] if positional else os.getcwd())
    # sys.path[0] is this script's folder, not the project: make the project importable.
    sys.path.insert(0, project_dir)

    # Settings or command modules that print while importing must not corrupt the JSON.
    real_stdout = sys.stdout
    sys.stdout = sys.stderr
    try:
        import django
        django.setup()
        commands = discover()
    finally:
        sys.stdout = real_stdout

    if with_versions:
        result = {
            'python_version': platform.python_version(),
            'django_version': django.get_version(),
            'commands': commands,
        }
    else:
        result = commands
    json.dump(result, sys.stdout)
    sys.stdout.write('\n')


def discover():
    from django.core.management import get_commands, load_command_class

    commands = []
    # get_commands() maps a command name to its app name ('django.core', 'demo', ...).
    for name, app_name in sorted(get_commands().items()):
        app_label = app_name if isinstance(app_name, str) else getattr(app_name, '__name__', str(app_name))
        try:
            command = load_command_class(app_name, name)
            help_text = command_help(command, name)
        except Exception as exc:  # like the Python runner: keep the command, without help
            print(f'discover_commands: cannot load {name}: {exc}', file=sys.stderr)
            help_text = ''
        commands.append({'name': name, 'app_label': app_label, 'help_text': help_text})
    return commands


def command_help(command, name):
    try:
        return command.create_parser('manage.py', name).format_help()
    except Exception:
        # The Python runner falls back to the short `help` attribute.
        return getattr(command, 'help', '') or ''


if __name__ == '__main__':
    main(sys.argv[1:])
