# syntax=docker/dockerfile:1
# The product image for users with Docker (docker buildx build --platform
# linux/amd64,linux/arm64 .). `make image` builds the same image without a
# container engine (scripts/image). Both hold only the static binaries, the
# CA bundle and the passwd/group entries of the non-root user 65532.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS=linux
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN set -eu; \
    for cmd in gateway/cmd/apim-gateway extension/cmd/apim-agent scripts/image/apim-probe; do \
      CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X main.version=$VERSION" -o /out/usr/local/bin/$(basename $cmd) ./$cmd; \
    done; \
    mkdir -p /out/etc/ssl/certs /out/tmp /out/home/nonroot; \
    cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group; \
    chmod 1777 /out/tmp; chmod 700 /out/home/nonroot; chown 65532:65532 /out/home/nonroot

FROM scratch
ARG VERSION=dev
COPY --from=build /out/ /
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="apim-arc-gateway" \
      org.opencontainers.image.description="Azure API Management self-hosted gateway (apim-gateway) and its Arc extension agent (apim-agent)" \
      org.opencontainers.image.source="https://github.com/seed393f6fe3/apim-arc-gateway" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="$VERSION"
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/apim-gateway"]
