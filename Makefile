# layerpack's front door for developers. `make example` builds the example layers,
# `make test` runs every test (it sets up BuildKit, QEMU and the test images first).
SHELL := /bin/bash
GO ?= go
BIN := bin/layerpack
TESTENV := scripts/testenv.sh
# The testenv's exports (daemon socket, rootfs folders, PATH with buildkitd).
WITH_TESTENV = set -euo pipefail; eval "$$($(TESTENV) env)";

.PHONY: build test unit race fuzz example bench setup lint clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/layerpack

# setup makes this machine ready for the real BuildKit tests (needs root once).
setup:
	$(TESTENV) setup

# test: everything, for real: unit tests, testscript suites, BuildKit builds for
# x86_64 and arm64, the concurrent parts under the race detector, and short fuzz runs.
test: setup lint
	$(WITH_TESTENV) $(GO) test -count=1 -timeout 70m ./...
	$(MAKE) race
	$(MAKE) fuzz

# race: what runs on several goroutines at once (the zipper's workers and stores,
# the key's parallel walk, the pipeline's overlapping stages) under the race
# detector: a buffer given back to its pool too early passes every other test.
race:
	$(GO) test -race -count=1 -run 'Reuse|Previous|BlobHeads|Inspect|Errors|ExactReader' ./zipper
	$(GO) test -race -count=1 -run 'Walk|Hasher|Memo|Pack|Last' ./cache
	$(GO) test -race -count=1 ./pipeline ./builders/files

# unit: the fast tests only; BuildKit scripts are skipped with the reason printed.
unit:
	$(GO) test -short ./...

# Counts, not durations: a -fuzztime deadline that lands in the middle of a slow
# input is reported as a failure ("context deadline exceeded").
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 200000x ./config
	$(GO) test -run '^$$' -fuzz '^FuzzRoundTrip$$' -fuzztime 20000x ./zipper
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime 200000x ./verify
	$(GO) test -run '^$$' -fuzz '^FuzzReadArchive$$' -fuzztime 300000x ./zipdiff

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...

# example: the main job, building layerpack.toml.example for both architectures.
example: setup build
	$(WITH_TESTENV) mkdir -p .layerpack/images && \
	  ln -sfn "$$LAYERPACK_TEST_ROOTFS_X86_64" .layerpack/images/x86_64 && \
	  ln -sfn "$$LAYERPACK_TEST_ROOTFS_ARM64" .layerpack/images/arm64 && \
	  BUILDKIT_HOST="$$LAYERPACK_TEST_BUILDKIT" $(BIN) build -c layerpack.toml.example

# bench: figures, as ratios against baselines measured in the same run.
bench: build
	$(GO) run ./bench/zipbench -layerpack $(BIN)
	$(GO) run ./bench/crossbench -layerpack $(BIN)
	$(GO) test -run '^$$' -bench . -benchtime 20x ./cmd/layerpack
	$(WITH_TESTENV) nice $(GO) run ./bench/coldstart -layerpack $(BIN)

clean:
	rm -rf bin dist .layerpack
