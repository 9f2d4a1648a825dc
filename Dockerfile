# authd container image.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t authd .
#   docker run -p 8080:8080 authd
#
# With no configuration authd stores its data in SQLite under /var/lib/authd
# (mount a volume there to keep it) and starts an embedded Redis: fine for a
# try-out, not for production. See docker-compose.yml for authd with Redis
# and PostgreSQL.
#
# The signing keys in the database are encrypted under the key-encryption
# key in AUTHD_KEY_ENCRYPTION_KEY_FILE. With SQLite the first start creates
# that file; in production mount your own (one `openssl rand -base64 32`
# per line, owned by uid 10001, mode 0600) and keep it out of database
# backups: without it the signing keys cannot be read.

# The build stage's Go version follows go.mod's go line (a test checks it).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Pure Go (SQLite is modernc.org/sqlite), so the binary is static. VCS
# stamping is off: the version comes from -X.
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
        -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/authd ./cmd/authd

# Alpine rather than distroless: busybox wget runs the healthcheck against
# /healthz, and ca-certificates lets authd reach Google and GitHub.
FROM alpine:3.22
RUN apk add --no-cache ca-certificates \
    && addgroup -S -g 10001 authd \
    && adduser -S -D -H -u 10001 -G authd -s /sbin/nologin authd \
    && mkdir -p /var/lib/authd \
    && chown authd:authd /var/lib/authd \
    && chmod 0700 /var/lib/authd
COPY --from=build /out/authd /usr/local/bin/authd
USER 10001:10001
WORKDIR /var/lib/authd
ENV AUTHD_ADDR=0.0.0.0:8080 \
    AUTHD_DATABASE_URL=sqlite:///var/lib/authd/authd.db \
    AUTHD_KEY_ENCRYPTION_KEY_FILE=/var/lib/authd/authd.db.keys
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["/usr/local/bin/authd"]
CMD ["serve"]
