# Builds pggat; used by docker-compose.yml.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin pggat

FROM debian:bookworm-slim
COPY --from=build /src/target/release/pggat /usr/local/bin/pggat
EXPOSE 5433
ENTRYPOINT ["pggat"]
CMD ["run", "--config", "/etc/pggat/Gatfile"]
