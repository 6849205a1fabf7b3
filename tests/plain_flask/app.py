"""A plain Flask app, as a Flask tutorial ends: not this repository's app/ (tests only)."""

import os

from flask import Flask

app = Flask(__name__)
app.config["SECRET_KEY"] = os.environ["SECRET_KEY"]


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/")
def hello():
    return {"greeting": os.environ["GREETING"], "key_length": len(app.config["SECRET_KEY"])}
