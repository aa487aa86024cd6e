"""Settings with schedules as code (DJANGOCOMMAND_SCHEDULES), for the runner's end-to-end tests.

EXAMPLE_SCHEDULES picks the list: "valid" (default: two good entries and one naming a command
the project does not have, which the server skips) or "unknown_key" (a typo in a key, which
stops the runner's start-up).
"""
import os

from .settings import *  # noqa: F401,F403

_which = os.environ.get('EXAMPLE_SCHEDULES', 'valid')
if _which == 'unknown_key':
    DJANGOCOMMAND_SCHEDULES = [
        {'command': 'clearsessions', 'crn': '0 3 * * *'},
    ]
else:
    DJANGOCOMMAND_SCHEDULES = [
        {'name': 'nightly sessions', 'command': 'clearsessions', 'cron': '30 2 * * *', 'timezone': 'Europe/Amsterdam'},
        {'command': 'check', 'args': '--deploy --fail-level ERROR', 'cron': '@hourly'},
        {'name': 'ghost', 'command': 'nosuchcommand', 'cron': '@daily'},
    ]
