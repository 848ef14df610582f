# syntax=docker/dockerfile:1
# wa-onboard: one image for every role (`ingress`, `worker`, `graph-sim`) and tool
# (`tenants`, `dlq`, `send`); the subcommand is the container's command.
#
#   docker build -t wa-onboard .
#   docker run --rm wa-onboard --help

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
# Cache mounts keep the registry and build artefacts between builds; the binary is copied out
# of the cached target directory, which is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p wa-onboard \
 && install -m 0755 target/release/wa-onboard /usr/local/bin/wa-onboard

FROM debian:bookworm-slim
# ca-certificates: the worker talks to graph.facebook.com over TLS.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 wa-onboard \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin wa-onboard
COPY --from=builder /usr/local/bin/wa-onboard /usr/local/bin/wa-onboard
USER 10001:10001
ENV RUST_LOG=info
# ingress (WA_LISTEN), graph-sim (WA_GRAPH_SIM_LISTEN), worker metrics (WA_METRICS_LISTEN).
EXPOSE 8080 8081 9090
ENTRYPOINT ["wa-onboard"]
CMD ["--help"]
