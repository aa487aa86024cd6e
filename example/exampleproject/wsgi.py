"""WSGI entry point (unused by the tests, kept so the project is a complete Django project)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'exampleproject.settings')

application = get_wsgi_application()
