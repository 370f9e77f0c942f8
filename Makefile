# cdrguard — build, run, test.
#
#   make run    generate a synthetic carrier day and replay it through the
#               detectors (no Kafka or ClickHouse needed)
#   make test   start local Kafka and ClickHouse, run every test with -race
#   make demo   the whole product locally: run, hooks, console
#   make bench  Go benchmarks (decoder, engine, memory per caller)
#   make lint   gofmt, go vet, staticcheck

GO          ?= go
BIN         := bin/cdrguard
RUN_DIR     := .run
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
SERVICES_SH := deploy/local/services.sh
VERSION     := $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build run demo test test-unit bench bench-e2e lint fmt services-up services-down clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/cdrguard

run: build
	@mkdir -p $(RUN_DIR)
	$(BIN) gen --seed 1 --out $(RUN_DIR)/day.jsonl
	$(BIN) replay --rules deploy/rules.yaml --labels $(RUN_DIR)/day.jsonl.labels.jsonl $(RUN_DIR)/day.jsonl

# The whole product on this machine: local Kafka and ClickHouse, a day
# streamed through cdrguard run with webhooks to a demo receiver, and the
# console (it prints the URL and the demo user's password).
demo:
	deploy/local/demo.sh

# The integration tests talk to the real Kafka and ClickHouse started by
# services-up; CDRGUARD_INTEGRATION=1 makes them fail rather than skip when
# a service is missing.
test: services-up
	CDRGUARD_INTEGRATION=1 $(GO) test -race -count=1 -timeout 45m ./...
	$(GO) test -count=1 -run '^TestLowVolumeCallerMemory$$' ./detectors/

# Unit tests only: no services.
test-unit:
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 ./schemas/... ./detectors/...

# End-to-end throughput against the local broker: a pre-filled topic of a
# generated day, drained bare with kafka-go and consumed by the job in the
# same run (CDRGUARD_BENCH_SCALE=1 is ~490k records).
bench-e2e: services-up
	CDRGUARD_BENCH_E2E=1 $(GO) test -run 'TestE2EThroughput' -count=1 -v -timeout 30m ./pipeline/stream/

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

services-up:
	$(SERVICES_SH) up

services-down:
	$(SERVICES_SH) down

clean:
	rm -rf bin $(RUN_DIR)
