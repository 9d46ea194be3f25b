import gc
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightback_site.settings")
application = get_wsgi_application()

from .startup import refuse_unsafe_start, warm  # noqa: E402 - after Django is set up

refuse_unsafe_start()
warm()

# What the process built to start (Django, the settings, every model, view and URL) lives as long as it
# does: out of the collector's sight, a full collection no longer walks it. One took 69 ms of a /precancel
# before (10 ms after), in a request that happened to trigger it: the hot path's slowest answers.
gc.freeze()
