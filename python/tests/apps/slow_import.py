"""The WSGI test app, slow to import: a worker stays in start-up for a while."""

import time

time.sleep(2.0)

from wsgi_app import app  # noqa: E402,F401
