"""Settings for the djangocommand example project.

Everything that differs between test runs comes from environment variables so that
each test can point the project at its own database and server.
"""
import os
from pathlib import Path

# The runner's default allow list (the same as the Python runner's).
DEFAULT_ALLOWED_COMMANDS = (
    'migrate',
    'showmigrations',
    'dbbackup',
    'createcachetable',
    'collectstatic',
    'findstatic',
    'clearsessions',
    'check',
    'sendtestemail',
    'diffsettings',
    'dumpdata',
    'inspectdb',
    'test',
    'show_urls',
    'validate_templates',
    'clear_cache',
    'fixtree',
    'publish_scheduled',
    'update_index',
)

# Commands of the demo app, written for tests and benchmarks.
DEMO_COMMANDS = (
    'spew',
    'fail',
    'slow',
    'colors',
    'rich_args',
    'subcmds',
    'ask',
    'touch_note',
    'sleep_forever',
    'write_notes',
)

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get(
    'DJANGO_SECRET_KEY',
    'django-insecure-dev-only-example-key-do-not-use-in-production',
)

DEBUG = os.environ.get('DJANGO_DEBUG') == '1'

ALLOWED_HOSTS = ['localhost', '127.0.0.1', '[::1]']

INSTALLED_APPS = [
    'django.contrib.auth',
    'django.contrib.contenttypes',
    'django.contrib.sessions',
    'demo',
]

MIDDLEWARE = [
    'django.middleware.security.SecurityMiddleware',
    'django.contrib.sessions.middleware.SessionMiddleware',
    'django.middleware.common.CommonMiddleware',
]

ROOT_URLCONF = 'exampleproject.urls'

WSGI_APPLICATION = 'exampleproject.wsgi.application'

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.environ.get('EXAMPLE_DB_PATH') or str(BASE_DIR / 'db.sqlite3'),
    }
}

# PostgreSQL instead (needs psycopg2): postgres://USER:PASSWORD@HOST:PORT/NAME
if os.environ.get('DJANGOCOMMAND_EXAMPLE_DATABASE_URL'):
    from urllib.parse import unquote, urlsplit

    _url = urlsplit(os.environ['DJANGOCOMMAND_EXAMPLE_DATABASE_URL'])
    DATABASES['default'] = {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': unquote(_url.path.lstrip('/')),
        'USER': unquote(_url.username or ''),
        'PASSWORD': unquote(_url.password or ''),
        'HOST': _url.hostname or '',
        'PORT': str(_url.port or ''),
    }

# A second alias (SQLite), for tests that check every alias.
if os.environ.get('EXAMPLE_SECOND_DB_PATH'):
    DATABASES['second'] = {
        'ENGINE': 'django.db.backends.sqlite3',
        'NAME': os.environ['EXAMPLE_SECOND_DB_PATH'],
    }

DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'

LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'
USE_I18N = True
USE_TZ = True

# djangocommand runner settings.
DJANGOCOMMAND_API_KEY = os.environ.get('DJANGOCOMMAND_API_KEY', '')
DJANGOCOMMAND_SERVER_URL = os.environ.get('DJANGOCOMMAND_SERVER_URL', 'http://127.0.0.1:8600')
DJANGOCOMMAND_ALLOWED_COMMANDS = DEFAULT_ALLOWED_COMMANDS + DEMO_COMMANDS

# Commands that run in read-only database mode by default (comma-separated in the environment).
if os.environ.get('EXAMPLE_READONLY_COMMANDS'):
    DJANGOCOMMAND_READONLY_COMMANDS = [c.strip() for c in os.environ['EXAMPLE_READONLY_COMMANDS'].split(',') if c.strip()]

# Audited shells: EXAMPLE_ALLOW_SHELL=0 forbids them on this side (the runner then refuses).
if os.environ.get('EXAMPLE_ALLOW_SHELL') == '0':
    DJANGOCOMMAND_ALLOW_SHELL = False
