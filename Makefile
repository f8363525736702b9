# procwall's build and test entry points. `make test` is the one command CI
# runs (with PROCWALL_TEST_PRIVILEGED=1): it installs what the tests need
# from Debian's packages when it can, then vets and runs every test with the
# race detector.

GO ?= go

.PHONY: test deps vet unit bench fuzz

test: deps vet
	$(GO) test -race -count=1 -timeout 20m ./...

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
