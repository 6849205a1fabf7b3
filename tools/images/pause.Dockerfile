# The pod sandbox's "pause" container: a static binary that waits for a signal (catatonit -P,
# from Debian's package, is what podman uses for the same job). No registry here serves
# registry.k8s.io/pause.
FROM docker.io/library/debian:bookworm-slim AS package
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends catatonit

FROM scratch
COPY --from=package /usr/bin/catatonit /pause
USER 65535:65535
ENTRYPOINT ["/pause", "-P"]
