import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightback_site.settings")
application = get_wsgi_application()

from .startup import refuse_unsafe_start  # noqa: E402 - after Django is set up

refuse_unsafe_start()
