# syntax=docker/dockerfile:1
#
# recommendation-api image: the one binary (embedded default model included),
# ONNX Runtime 1.24.1, and nothing in its working directory but the data volume.
#
#   docker build -t recommendation-api .
#   docker run -p 127.0.0.1:50051:50051 -p 127.0.0.1:8080:8080 \
#     -v reco-data:/var/lib/recommendation-api \
#     -v $PWD/tokens:/run/secrets/reco_tokens:ro recommendation-api

# ONNX Runtime: libonnxruntime.so.1 from the npm package onnxruntime-node@1.24.1
# (`npm pack` only downloads the tarball; no install script runs). The script
# verifies the x64 file's sha256 (53ef1ac0…23d4) and stops the build on a mismatch.
FROM node:22-bookworm-slim AS ort
WORKDIR /src
COPY scripts/install-onnxruntime.sh scripts/
RUN env -u ONNXRUNTIME_LIB scripts/install-onnxruntime.sh \
 && test -f .tools/lib/libonnxruntime.so.1

# The binary: cgo on, because onnxruntime_go loads the library with dlopen.
# Built on bookworm so its glibc is the runtime stage's.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/root/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=1 go build -trimpath -ldflags='-s -w' -o /out/recommendation-api ./cmd/recommendation-api

FROM debian:bookworm-slim
# A numeric non-root user, so that Kubernetes' runAsNonRoot can check it.
RUN groupadd --system --gid 10001 reco \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin reco \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/recommendation-api
COPY --from=ort /src/.tools/lib/libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
COPY --from=build /out/recommendation-api /usr/local/bin/recommendation-api
# Fail the build, not the first start, when a library ONNX Runtime needs is missing.
RUN ldconfig && ! ldd /usr/local/lib/libonnxruntime.so.1 | grep 'not found'
ENV ONNXRUNTIME_LIB=/usr/local/lib/libonnxruntime.so.1 \
    RECO_DATA_DIR=/var/lib/recommendation-api \
    RECO_LOG_FORMAT=json
WORKDIR /var/lib/recommendation-api
VOLUME ["/var/lib/recommendation-api"]
USER 10001:10001
# gRPC, REST (with /healthz, /readyz and, unless --metrics-addr says otherwise, /metrics).
EXPOSE 50051 8080
# /readyz over plain HTTP: 200 once a model serves. With --tls-cert on the
# REST port, override the health check (or the probe of the orchestrator).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/recommendation-api", "healthcheck", "--http-addr", "127.0.0.1:8080", "--timeout", "3s"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/recommendation-api"]
# Inside a container the listeners must take every interface; publish the
# ports on the host's loopback (see docker-compose.yml) to keep them private.
CMD ["serve", "--grpc-addr", "0.0.0.0:50051", "--http-addr", "0.0.0.0:8080"]
