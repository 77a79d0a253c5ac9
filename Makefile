# Sluice: the two commands that matter are `make run` and `make test`.

CARGO ?= cargo
LISTEN ?= 127.0.0.1:3307
BACKEND ?= 127.0.0.1:3306
# cargo-deb release that `make deb` installs when cargo deb is missing.
CARGO_DEB_VERSION ?= 3.8.0

.PHONY: run build release test test-cluster drivers lint fmt bench-relay bench-batch bench-instructions deb test-package clean

## Run Sluice on 127.0.0.1:3307 in front of the MariaDB at 127.0.0.1:3306.
run: release
	./target/release/sluice --config config/sluice.ini --listen $(LISTEN) --backend $(BACKEND)

build:
	$(CARGO) build --workspace

release:
	$(CARGO) build --release --bin sluice

## Every test: unit, property and end-to-end (private MariaDB servers),
## the driver matrix included.
test: drivers
	$(CARGO) build --bin sluice
	$(CARGO) test --workspace --no-fail-fast

## Sluice in front of a real 3-node Galera cluster on this host (about a
## minute after the build). Installs galera-4 and rsync when missing.
## The tests share the machine's two cores with three nodes each, so they
## run one at a time.
test-cluster:
	bash tests/cluster/setup.sh
	$(CARGO) build --bin sluice
	SLUICE_TEST_CLUSTER=1 $(CARGO) test -p sluice-e2e --test cluster_galera -- --test-threads=1

## Third-party drivers for the driver matrix (PHP, Python, Node); installs
## only what is missing.
drivers:
	bash tests/drivers/setup.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all

## Relay overhead: sysbench directly against MariaDB and through Sluice.
bench-relay: release
	bash benches/relay.sh

## Write batching: sysbench oltp_insert and the loadgen, directly and through Sluice.
bench-batch: release
	$(CARGO) build --release -p sluice-loadgen
	bash benches/batch.sh

## Sluice's user-space instructions per batched row (valgrind callgrind),
## for comparing builds; see the head of benches/instructions.sh.
bench-instructions: release
	bash benches/instructions.sh

## Debian package target/debian/sluice_<version>_<arch>.deb: the stripped
## release binary, /etc/sluice/sluice.ini (a conffile), the systemd unit,
## the man page and docs (see [package.metadata.deb] in crates/sluice).
## Installs cargo-deb when missing.
deb:
	@$(CARGO) deb --version >/dev/null 2>&1 || \
		$(CARGO) install cargo-deb --locked --version $(CARGO_DEB_VERSION)
	$(CARGO) deb -p sluice --locked --strip

## Builds the package and checks its contents, scripts and binary.
test-package:
	bash tests/package/check-deb.sh

clean:
	$(CARGO) clean
