import os

from django.core.wsgi import get_wsgi_application

from rapport.core.chunked import ChunkedBodyMiddleware

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rapport.settings")

application = ChunkedBodyMiddleware(get_wsgi_application())
