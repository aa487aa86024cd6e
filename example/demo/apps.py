from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = 'demo'
    default_auto_field = 'django.db.models.BigAutoField'

    def ready(self):
        from . import checks  # noqa: F401  registers the example's system check
