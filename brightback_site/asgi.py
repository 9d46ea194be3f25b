import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightback_site.settings")
application = get_asgi_application()

from .startup import refuse_unsafe_start  # noqa: E402 - after Django is set up

refuse_unsafe_start()
