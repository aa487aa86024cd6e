"""Settings with classic runner mistakes, for the runner's configuration tests.

Which mistake is chosen by the EXAMPLE_MISTAKE environment variable.
"""
import os

from .settings import *  # noqa: F401,F403

_mistake = os.environ.get('EXAMPLE_MISTAKE', '')
if _mistake == 'string_not_tuple':
    DJANGOCOMMAND_ALLOWED_COMMANDS = ('migrate')  # a string: the trailing comma is missing
elif _mistake == 'short_heartbeat':
    DJANGOCOMMAND_HEARTBEAT_INTERVAL = 2
elif _mistake == 'plain_http':
    DJANGOCOMMAND_SERVER_URL = 'http://djangocommand.example.com'
