"""A system check that warns through Python's `warnings`, when EXAMPLE_CHECK_WARNING is set.

Python shows such a warning once per place in a process. The warm runner runs the checks
once at start-up to prime Django's caches; this check lets the tests prove that a forked
command still shows the warning, as a cold `manage.py check` does.
"""
import os
import warnings

from django.core import checks


@checks.register()
def warn_when_asked(app_configs, **kwargs):
    if os.environ.get('EXAMPLE_CHECK_WARNING'):
        warnings.warn('the example check was asked to warn', UserWarning)
        return [checks.Warning('EXAMPLE_CHECK_WARNING is set', id='demo.W001')]
    return []
