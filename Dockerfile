# syntax=docker/dockerfile:1
# wfe-engine container image: a static-ish Rust binary on distroless, run as
# a non-root user. Build: docker build -t wfe-engine:dev .

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The manifest first, so a source-only change reuses the dependency layer.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY tests ./tests
COPY rules ./rules
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin wfe-engine \
 && install -D -m 0755 target/release/wfe-engine /out/wfe-engine \
 && /out/wfe-engine check --rules rules \
 && /out/wfe-engine test --rules rules

# glibc, CA certificates and a nonroot user (65532), no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="wfe-engine" \
      org.opencontainers.image.description="A rules-driven controller for kubernaut WorkflowExecutions" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /out/wfe-engine /usr/local/bin/wfe-engine
# The shipped rules, used when no ConfigMap is mounted over them.
COPY --from=build --chown=0:0 /src/rules /etc/wfe-engine/rules
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/wfe-engine"]
CMD ["run"]
