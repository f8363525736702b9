# procwall's build and test entry points. `make test` is the one command CI
# runs (with PROCWALL_TEST_PRIVILEGED=1): it installs what the tests need
# from Debian's packages when it can, then vets and runs every test with the
# race detector.

GO ?= go
# How long `make fuzz` runs each fuzz target; `make test` runs each for
# FUZZ_BRIEF. A long run on demand: make fuzz FUZZTIME=10m
FUZZTIME ?= 1m
FUZZ_BRIEF ?= 3s

.PHONY: test deps vet unit bench fuzz

test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=$(FUZZ_BRIEF)

deps:
	./internal/ci/install-deps.sh

vet:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# unit runs the tests without installing anything or needing privilege.
unit:
	$(GO) test -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# fuzz runs every fuzz target in the module (each `func FuzzX` in a
# _test.go file) for FUZZTIME, one after another; the first failure stops
# it, and the failing input is kept under the package's testdata/fuzz.
fuzz:
	@set -e; for f in $$(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go'); do \
	  for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
	    echo "fuzz $$(dirname $$f) $$t ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) ./$$(dirname $$f) >/tmp/procwall-fuzz.$$$$ 2>&1 || \
	      { cat /tmp/procwall-fuzz.$$$$; rm -f /tmp/procwall-fuzz.$$$$; exit 1; }; \
	  done; \
	done; rm -f /tmp/procwall-fuzz.$$$$
