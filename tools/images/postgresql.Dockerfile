# PostgreSQL for the node tests' database tier, from Debian bookworm's postgresql package: no
# registry here serves the official image. Runs as the postgres user, UID 999 as there;
# entrypoint.sh creates the cluster on first start from POSTGRES_USER, POSTGRES_PASSWORD and
# POSTGRES_DB, as the official image does.
FROM docker.io/library/debian:bookworm-slim

# The user first, with the official image's numeric ids (the package would pick others).
RUN groupadd --system --gid 999 postgres \
    && useradd --system --uid 999 --gid 999 --home-dir /var/lib/postgresql postgres \
    && mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' >/etc/postgresql-common/createcluster.conf \
    && apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql-15 \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    # Without JIT: its LLVM provider is 130 of the image's MB, and every node start imports
    # the image. PostgreSQL runs without JIT when the provider is missing.
    && rm /usr/lib/postgresql/15/lib/llvmjit*.so \
    && rm -rf /usr/lib/postgresql/15/lib/bitcode \
    && dpkg --purge --force-depends libllvm14 libz3-4

COPY postgresql-entrypoint.sh /usr/local/bin/entrypoint.sh
RUN mkdir -p /var/lib/postgresql/data \
    && chown postgres:postgres /var/lib/postgresql/data
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data
USER 999:999
EXPOSE 5432
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["postgres"]
