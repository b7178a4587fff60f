# deskpool: `make run` opens it on the embedded demo, `make test` runs every check.
# Both install the Debian packages they need first (apt-get, as root or through sudo).

SHELL := /bin/bash
CARGO ?= cargo
# Build: libvirt headers and pkg-config for the `virt` crate, a C compiler for mimalloc, protoc
# and its well-known .proto files for the etcd client's generated gRPC code (crates/ha).
BUILD_PACKAGES := pkg-config libvirt-dev gcc protobuf-compiler libprotobuf-dev
# Tests: virsh and virt-xml-validate to check what deskpool writes from outside, tmux for the
# console tests, promtool (prometheus) to check the /metrics exposition.
# binutils (readelf, strip) and adduser for the Debian package and its install test.
# etcd-server: the leader-election tests start their own etcd on loopback ports.
TEST_PACKAGES := $(BUILD_PACKAGES) libvirt-clients libxml2-utils tmux prometheus binutils adduser etcd-server
DEB_PACKAGES := $(BUILD_PACKAGES) binutils
# The real-host benchmark: virsh, and virt-clone (virtinst) for its baseline.
BENCH_QEMU_PACKAGES := $(BUILD_PACKAGES) libvirt-clients virtinst
BENCH_QEMU_ARGS ?= --runs 3

.PHONY: run test test-qemu build deb deps-build deps-test bench bench-qemu check-tools

define apt_install
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing || exit 1; \
	  for pair in $(2); do \
	    package=$${pair%%:*}; service=$${pair##*:}; \
	    case " $$missing " in *" $$package "*) \
	      if [ -d /run/systemd/system ]; then \
	        echo "stopping the $$service service the package started (only its tool is needed)"; \
	        $$sudo systemctl disable --now "$$service" >/dev/null 2>&1 || true; \
	      fi;; \
	    esac; \
	  done; \
	fi
endef

check-tools:
	@command -v $(CARGO) >/dev/null || { echo "cargo is missing: install Rust (https://rustup.rs)"; exit 1; }

deps-build: check-tools
	$(call apt_install,$(BUILD_PACKAGES))

deps-test: check-tools
	$(call apt_install,$(TEST_PACKAGES),prometheus:prometheus etcd-server:etcd)

build: deps-build
	$(CARGO) build --release --locked

# The Debian package target/debian/deskpool_VERSION_ARCH.deb (scripts/build-deb.sh: dpkg-deb on a
# staged tree of the release binary, the unit, man pages, completions and the example config).
deb: check-tools
	$(call apt_install,$(DEB_PACKAGES))
	scripts/build-deb.sh

# The console on the embedded demo, with a synthetic working day replayed 60 times faster.
run: build
	./target/release/deskpool --demo

# Every check, including deskpool on a real libvirtd with QEMU (tests/qemu*.rs): the script
# installs and starts it (KVM where /dev/kvm works, TCG otherwise) and `make test` stops it again
# unless it was already running before. The real guests' test seed is built once
# (scripts/build-test-seed.sh, cached in /var/cache/deskpool/test-seed).
test: deps-test
	$(CARGO) fmt --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	@qemu=""; was_up=""; \
	if [ "$$(id -u)" -eq 0 ]; then \
	  qemu=1; scripts/libvirt-host.sh status >/dev/null 2>&1 && was_up=1; \
	  scripts/libvirt-host.sh up || exit 1; \
	  seed=$$(scripts/build-test-seed.sh) || exit 1; \
	else \
	  echo "not root: the real-host tests (tests/qemu*.rs) and the package install test are skipped; run make test as root for them"; \
	fi; \
	status=0; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  DESKPOOL_QEMU=$$qemu DESKPOOL_PACKAGE=$$qemu DESKPOOL_TEST_SEED=$$seed $(CARGO) nextest run --locked --workspace --no-fail-fast || status=$$?; \
	else \
	  DESKPOOL_QEMU=$$qemu DESKPOOL_PACKAGE=$$qemu DESKPOOL_TEST_SEED=$$seed $(CARGO) test --locked --workspace --no-fail-fast || status=$$?; \
	fi; \
	[ -z "$$qemu" ] || [ -n "$$was_up" ] || scripts/libvirt-host.sh down; \
	exit $$status

# Only the real-host tests (the daemons are left running: `scripts/libvirt-host.sh down`).
test-qemu: deps-test
	scripts/libvirt-host.sh up
	@seed=$$(scripts/build-test-seed.sh) || exit 1; \
	if $(CARGO) nextest --version >/dev/null 2>&1; then \
	  DESKPOOL_QEMU=1 DESKPOOL_TEST_SEED=$$seed $(CARGO) nextest run --locked --no-fail-fast -E 'binary(/^qemu/)'; \
	else \
	  DESKPOOL_QEMU=1 DESKPOOL_TEST_SEED=$$seed $(CARGO) test --locked --no-fail-fast --test 'qemu*'; \
	fi

bench: build
	$(CARGO) run --release --locked --example provision_bench
	$(CARGO) run --release --locked --example planner_bench
	$(CARGO) run --release --locked --example render_bench
	$(CARGO) run --release --locked --example idle_cpu

# Issue 5's figure on a real libvirtd (qemu:///system): empty host to 20 running buffered
# desktops from a seed holding 1 GiB, deskpool against a virt-clone + virsh start loop and
# against the sum of its own libvirt calls (examples/qemu_bench/). Takes the real-host tests'
# lock; needs about 25 GiB free under /var/lib/libvirt.
bench-qemu: check-tools
	$(call apt_install,$(BENCH_QEMU_PACKAGES))
	scripts/libvirt-host.sh up
	$(CARGO) build --release --locked
	$(CARGO) run --release --locked --example qemu_bench -- $(BENCH_QEMU_ARGS)
