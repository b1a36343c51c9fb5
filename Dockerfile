# Multi-stage build: a static tailor binary on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /out/tailor ./cmd/tailor

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/tailor /usr/local/bin/tailor
USER nonroot:nonroot
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/tailor"]
CMD ["serve", "--config", "/etc/tailor/tailor.yaml"]
