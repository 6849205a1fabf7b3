# A stand-in for the official python:3.11.14-slim-bookworm, which no registry here serves: Debian
# bookworm's own Python 3.11, with what app/Dockerfile uses from the official image. Built by
# scripts/build-images; the official image builds Python from source into /usr/local instead.
FROM docker.io/library/debian:bookworm-slim

# What the official image sets, for the same behaviour at run time.
ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8

# `python` as well as `python3` (the Job and the init container run `python -m ...`), and pip.
# Without EXTERNALLY-MANAGED, `pip install` as root installs into /usr/local as it does in the
# official image (which has no Debian-managed Python to protect).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates python3 python3-pip python-is-python3 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /usr/lib/python3*/EXTERNALLY-MANAGED

CMD ["python3"]
