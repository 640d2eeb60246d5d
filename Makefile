# The two commands README.md opens with: `make demo` and `make test`.
.PHONY: demo test build release unit-tests integration-tests robustness fuzz-short sanitize-address

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

# Each fuzz target for 60 s, then the unit tests under AddressSanitizer (README: Robustness).
# Each is a cold build of every dependency the first time (.build-fuzz, .build-asan).
robustness: fuzz-short sanitize-address

fuzz-short:
	scripts/install-deps.sh
	for target in policy wire audit; do scripts/fuzz.sh $$target 60 || exit 1; done

sanitize-address:
	scripts/install-deps.sh
	scripts/sanitize.sh address
