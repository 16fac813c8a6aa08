# mailshift's image: the worker, the starter and mailshift-copy, built
# static (the directory's SQLite driver is pure Go) on a distroless base
# that runs as an unprivileged user. deploy/k8s uses it.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./worker ./starter ./cmd/mailshift-copy

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/worker"]
