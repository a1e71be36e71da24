import os
import sys

import uvicorn

from .app import app, create_app

if "--sign-in" in sys.argv[1:]:  # ask for a name first (see app.py)
    app = create_app(sign_in=True)

# Local only (see HOSTS). On Ctrl+C or SIGTERM the sockets close at once and
# the app's lifespan ends the sessions: the process exits within seconds.
uvicorn.run(
    app,
    host="127.0.0.1",
    port=int(os.environ.get("PORT", "8000")),
    timeout_graceful_shutdown=2,
)
