# Build: Go with cgo (onnxruntime_go loads libonnxruntime with dlopen), and
# npm to fetch the ONNX Runtime library from the onnxruntime-node package.
FROM golang:1.26-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN scripts/install-onnxruntime.sh \
 && CGO_ENABLED=1 go build -trimpath -o /out/recommendation-api ./cmd/recommendation-api

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home /var/lib/recommendation-api reco \
 && mkdir -p /var/lib/recommendation-api && chown reco /var/lib/recommendation-api
COPY --from=build /src/.tools/lib/libonnxruntime.so.1 /usr/local/lib/libonnxruntime.so.1
COPY --from=build /out/recommendation-api /usr/local/bin/recommendation-api
ENV ONNXRUNTIME_LIB=/usr/local/lib/libonnxruntime.so.1 \
    RECO_DATA_DIR=/var/lib/recommendation-api
USER reco
EXPOSE 50051 8080
ENTRYPOINT ["/usr/local/bin/recommendation-api"]
CMD ["serve"]
