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

DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'

LANGUAGE_CODE = 'en-us'
TIME_ZONE = 'UTC'
USE_I18N = True
USE_TZ = True

# djangocommand runner settings.
DJANGOCOMMAND_API_KEY = os.environ.get('DJANGOCOMMAND_API_KEY', '')
DJANGOCOMMAND_SERVER_URL = os.environ.get('DJANGOCOMMAND_SERVER_URL', 'http://127.0.0.1:8600')
DJANGOCOMMAND_ALLOWED_COMMANDS = DEFAULT_ALLOWED_COMMANDS + DEMO_COMMANDS
