# A stand-in for nginxinc/nginx-unprivileged (examples/three_tier.py's frontend), which no
# registry here serves: Debian bookworm's nginx-light, listening on 8080 as UID 101 with every
# writable path in /tmp, as that image does.
FROM docker.io/library/debian:bookworm-slim

RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 101 nginx-unprivileged \
    && useradd --system --uid 101 --gid 101 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin nginx-unprivileged

COPY nginx.conf /etc/nginx/nginx.conf
USER 101:101
EXPOSE 8080
CMD ["nginx", "-g", "daemon off;"]
