from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = 'demo'
    default_auto_field = 'django.db.models.BigAutoField'
