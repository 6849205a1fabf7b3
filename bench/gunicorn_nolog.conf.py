"""The shipped app/gunicorn.conf.py without the access log (bench only): what logging costs."""

import runpy
from pathlib import Path

globals().update(
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "app" / "gunicorn.conf.py"))
)
accesslog = None
