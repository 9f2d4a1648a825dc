# make test is the one test command: it starts throwaway Redis, Redis Cluster
# and PostgreSQL servers on loopback (scripts/testenv.sh), runs go vet, the
# gofmt check, staticcheck (pinned in go.mod as a tool) and the race-enabled
# tests against them, and stops the servers whatever happens.
GO ?= go

.PHONY: test check lint unit build run bench fmt

test:
	scripts/testenv.sh run $(MAKE) --no-print-directory check

check:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi
	$(GO) tool staticcheck ./...
	$(GO) test -race -count=1 ./...

# lint runs staticcheck alone, with the checks staticcheck.conf selects.
lint:
	$(GO) tool staticcheck ./...

# unit runs the tests without servers: those that need one are skipped.
unit:
	$(GO) test -count=1 ./...

# bench runs the load benchmarks (the authd binary under load on loopback,
# each target against a bare go-oauth2 server in the same run: README,
# "Performance") and the package benchmarks (sigauth verification, the rate
# limiter) against test servers:
#   scripts/testenv.sh run make bench
bench:
	$(GO) test -run '^$$' -bench Load -benchtime 4000x -count 5 -timeout 90m ./cmd/authd/
	$(GO) test -run '^$$' -bench . -benchtime 3s ./sigauth/ ./ratelimit/

build:
	$(GO) build -ldflags "-X main.version=$$(git describe --tags --always --dirty 2>/dev/null || echo dev)" -o bin/authd ./cmd/authd

run:
	$(GO) run ./cmd/authd

fmt:
	gofmt -w $$(git ls-files '*.go')
