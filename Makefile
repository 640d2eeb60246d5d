# The two commands README.md opens with: `make demo` and `make test`.
.PHONY: demo test build release unit-tests integration-tests

build:
	scripts/install-deps.sh
	swift build

release:
	scripts/install-deps.sh
	swift build -c release

demo: release
	scripts/demo.sh

test: build
	swift test
	scripts/with-postgres.sh scripts/integration-tests.sh
