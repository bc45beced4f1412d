# syntax=docker/dockerfile:1
# Berth's image: build with the official Swift toolchain on Debian bookworm, run on
# debian:bookworm-slim with only the berth binary (Swift runtime linked statically; OpenSSL
# and glibc from the system). Build and push:
#   docker build -t REGISTRY/berth:<appVersion> . && docker push REGISTRY/berth:<appVersion>  (without an engine: make image)

ARG SWIFT_IMAGE=swift:6.1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first: this layer survives source-only changes.
COPY Package.swift ./
RUN swift package resolve
# The manifest declares test targets too, so their folders must exist for the build to load it.
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib --product berth \
 && install -D -m 0755 "$(swift build -c release --static-swift-stdlib --show-bin-path)/berth" /out/berth \
 && strip /out/berth

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/berth /usr/local/bin/berth
# Fail the build, not the pod, when a shared library the binary needs is missing here.
RUN if ldd /usr/local/bin/berth | grep 'not found'; then exit 1; fi
# The chart runs it as 65532 with a read-only root filesystem; the image agrees.
USER 65532:65532
EXPOSE 8443 8080
LABEL org.opencontainers.image.title="berth" \
      org.opencontainers.image.description="Kubernetes admission webhook and GPU node provisioner for notebooks" \
      org.opencontainers.image.source="https://github.com/berth-dev/berth"
ENTRYPOINT ["/usr/local/bin/berth"]
