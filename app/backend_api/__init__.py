"""The backend HTTP API: a Flask application factory that gunicorn serves.

gunicorn calls ``create_app()`` in each worker (see ``gunicorn.conf.py``). Importing this
package creates nothing: no app, no connection, no log line, and imports none of the app's
modules: gunicorn's master imports the package (through gunicorn.conf.py) before gevent
patches the standard library in the workers, and a module imported unpatched keeps what it
bound (psycopg picks a blocking wait at import, which would stall a whole worker per query).
The app's modules are imported by ``create_app()``, in the worker.
"""

from collections.abc import Mapping
from typing import Any

from flask import Flask

__version__ = "0.1.0"


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app: configuration, JSON logs, request ids, JSON errors, probes, the API.

    ``test_config`` overrides every other source (see ``config.load``). When the
    configuration cannot work (no SECRET_KEY in production, a DATABASE_URL without a
    host, ...) it logs one line and raises ``config.ConfigError``, so gunicorn fails to
    boot instead of serving with a broken or insecure configuration.
    """
    from backend_api import api, config, db, errors, health, items, logs, request_id

    # An API serves no files: without a static folder Flask adds no /static route.
    app = Flask(__name__, static_folder=None)
    # JSON logging comes first so that even a configuration error is one parseable line.
    logs.configure_logger(app.logger)
    try:
        config.load(app.config, test_config)
        config.check(app.config, production=not (app.testing or app.debug))
    except config.ConfigError as error:
        # The message names the key, never its value (see ConfigError).
        app.logger.critical("refusing to start: %s", error)
        raise
    app.logger.setLevel(config.log_level(app.config["LOG_LEVEL"]))

    request_id.init_app(app)
    errors.init_app(app)
    db.init_app(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(items.bp)
    return app
