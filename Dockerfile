# Multi-stage build: a static tailor binary on a distroless, non-root base.
#   docker build -t tailor .
#   docker run -v $PWD/tailor.yaml:/etc/tailor/tailor.yaml -v $PWD/rules:/etc/tailor/rules -p 8080:8080 tailor
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /out/tailor ./cmd/tailor

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tailor /usr/local/bin/tailor
# Relative paths in the config (rules/, data/nats) resolve against its
# directory; "tailor health" reads admin.listen from the same file.
ENV TAILOR_CONFIG=/etc/tailor/tailor.yaml
USER nonroot:nonroot
# 8080: visitors. 9090: the admin listener (/healthz, /readyz, /metrics,
# /v1/*); keep it off the public network.
EXPOSE 8080 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["/usr/local/bin/tailor", "health"]
ENTRYPOINT ["/usr/local/bin/tailor"]
CMD ["serve"]
