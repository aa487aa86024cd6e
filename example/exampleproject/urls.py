# The example project serves no pages: it exists to run management commands.
urlpatterns = []
