# drover's container image: `docker build -t drover .`
#
# Two stages on Debian 12 (bookworm-slim), the distribution drover is built
# and tested on. The first compiles the `drover` binary from Debian's -dev
# packages; the second carries only that binary, the runtime libraries of
# the same packages and the example configs, and runs as the non-root user
# `drover`. One image serves every role: the command picks it
# (`coordinator`, `worker`, `submit`, `status`, ...). docker-compose.yml
# shows them together.

# ---- build ------------------------------------------------------------------
FROM debian:bookworm-slim AS build
# tools/setup installs the compilers and every -dev package drover builds
# with, the same list CI uses, so this stage never drifts from it. Copied
# alone first, so that the layer is cached until that list changes.
COPY tools/setup /src/tools/setup
RUN /src/tools/setup && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=Release >/dev/null \
 && cmake --build /build -j"$(nproc)" --target drover \
 && strip /build/tools/cli/drover

# ---- runtime ----------------------------------------------------------------
FROM debian:bookworm-slim
# The shared libraries the binary needs (ldd build/tools/cli/drover), and no
# compiler. Tasks of the spawn backend run with the image's /bin/sh and
# coreutils; extend the image (FROM drover) with what your tasks call.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libzmq5 libyaml-cpp0.7 libspdlog1.10 libsqlite3-0 libprotobuf32 \
      libcpp-httplib0.11 libssl3 libtcmalloc-minimal4 \
 && rm -rf /var/lib/apt/lists/*
# A fixed uid/gid, so that volumes keep the same owner across rebuilds.
# /var/lib/drover holds the coordinator's state (a named volume in
# docker-compose.yml) and is the workers' working directory.
# /etc/drover/keys/ROLE are where docker-compose.yml mounts the CURVE key
# volumes: a new volume takes the owner and mode of the directory it is
# mounted on, so these make the volumes the drover user's, private to it.
RUN groupadd --system --gid 10001 drover \
 && useradd --system --uid 10001 --gid drover --home-dir /var/lib/drover \
      --shell /usr/sbin/nologin drover \
 && install -d -o drover -g drover -m 0750 /var/lib/drover \
 && install -d -m 0755 /etc/drover/keys \
 && install -d -o drover -g drover -m 0700 /etc/drover/keys/coordinator \
      /etc/drover/keys/worker /etc/drover/keys/client
COPY --from=build /build/tools/cli/drover /usr/local/bin/drover
# The `keys` service of docker-compose.yml: `drover keygen` for each role.
COPY tools/compose-keys /usr/local/bin/drover-compose-keys
COPY configs /opt/drover/configs
# Relative paths such as configs/examples/matrix.yaml resolve here, so the
# examples can be submitted as the docs show them.
WORKDIR /opt/drover
USER drover
EXPOSE 7700
ENTRYPOINT ["drover"]
CMD ["--help"]
