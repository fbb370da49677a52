# Builds weir and the example plugins, then ships them on a slim Debian.
#   docker build -t weir .
#   docker compose up        (see docker-compose.yml)

FROM rust:1.95-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN bash plugins/build.sh \
 && cargo build --release -p weir \
 && cp target/release/weir /usr/local/bin/weir

FROM debian:bookworm-slim
# libssl3: librdkafka's TLS and SCRAM; curl: docker-compose's health check.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libssl3 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/weir /usr/local/bin/weir
COPY --from=build /src/plugins/dist/*.wasm /app/plugins/dist/
COPY quickstart/ /app/quickstart/
WORKDIR /app
ENTRYPOINT ["weir"]
CMD ["run", "--config", "/app/quickstart/weir.toml"]
