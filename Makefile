# magnum-capi: build, pack, test, lint.
#   make charm            static amd64 binary -> ./magnum-capi.charm
#   make charm ARCH=arm64 cross-built arm64   -> ./magnum-capi-arm64.charm
#   make test             every test, the real-parser ones included
#   make lint             rustfmt, clippy, charmcraft analyse, charm-proof
#   make deps             install everything any target needs (.ci/deps.sh)

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

ARCH ?= amd64
TARGET_amd64 := x86_64-unknown-linux-musl
TARGET_arm64 := aarch64-unknown-linux-musl
TARGET := $(TARGET_$(ARCH))
ifeq ($(TARGET),)
$(error ARCH must be amd64 or arm64, not $(ARCH))
endif
CHARM_FILE := $(if $(filter amd64,$(ARCH)),magnum-capi.charm,magnum-capi-$(ARCH).charm)
STAGE := build/$(ARCH)/magnum-capi
BINARY := target/$(TARGET)/release/magnum-capi
LINT_VENV := target/venv-lint

# Every hook the binary routes (src/event.rs HOOKS; tests/packaging.rs
# checks the two lists agree) and every action in actions.yaml.
HOOKS := install config-changed upgrade-charm secret-changed start update-status stop remove juju-info-relation-joined juju-info-relation-changed juju-info-relation-departed restart-relation-joined restart-relation-changed restart-relation-departed leader-elected
ACTIONS := verify smoketest

# arm64: ring (under rustls) has C and assembly, so a C cross toolchain is
# needed; zig from PyPI (with cargo-zigbuild) is one, no apt cross packages.
ZIG_VENV := target/venv-zig

.PHONY: all deps charm stage binary test test-fast test-real demo bench lint clean venv-oslo venv-openstack fuzz

all: charm

# Set-up: every target below depends on `deps`, which runs .ci/deps.sh once
# per make run for the groups its goals need (the one list of what the
# project needs from a machine; it installs only what is missing and says
# so in one line when nothing is).
ARCH_DEPS := build $(if $(filter arm64,$(ARCH)),arm64)
DEPS_all := $(ARCH_DEPS)
DEPS_charm := $(ARCH_DEPS)
DEPS_stage := $(ARCH_DEPS)
DEPS_binary := $(ARCH_DEPS)
DEPS_test := test
DEPS_test-fast :=
DEPS_test-real := $(ARCH_DEPS) real
DEPS_demo := $(ARCH_DEPS) real
DEPS_bench := $(ARCH_DEPS) real bench
DEPS_lint := $(ARCH_DEPS) lint
DEPS_fuzz := fuzz
DEPS_venv-oslo := test
DEPS_venv-openstack := test
DEPS_deps := all
DEPS_GROUPS := $(sort $(foreach g,$(or $(MAKECMDGOALS),all),$(DEPS_$(g))))

deps:
	@$(if $(strip $(DEPS_GROUPS)),bash .ci/deps.sh $(DEPS_GROUPS),true)

ifeq ($(ARCH),arm64)
binary: deps
	PATH="$(CURDIR)/$(ZIG_VENV)/bin:$$PATH" cargo-zigbuild zigbuild --release --locked --no-default-features --target $(TARGET) --bin magnum-capi
else
binary: deps
	cargo build --release --locked --no-default-features --target $(TARGET) --bin magnum-capi
endif

# The charm's tree: dispatch IS the static binary (no shell between Juju
# and the charm); magnum-capi names it for people. hooks/<hook> and
# actions/<action> are two-line scripts for agents that predate dispatch
# (and for charm-proof, which reads them as text).
stage: binary
	rm -rf $(STAGE)
	mkdir -p $(STAGE)/hooks $(STAGE)/actions
	install -m 0755 $(BINARY) $(STAGE)/dispatch
	ln -s dispatch $(STAGE)/magnum-capi
	for h in $(HOOKS); do printf '#!/bin/sh\nJUJU_DISPATCH_PATH=hooks/%s exec ./dispatch\n' $$h > $(STAGE)/hooks/$$h; done
	for a in $(ACTIONS); do printf '#!/bin/sh\nJUJU_DISPATCH_PATH=actions/%s exec ./dispatch\n' $$a > $(STAGE)/actions/$$a; done
	chmod 0755 $(STAGE)/hooks/* $(STAGE)/actions/*
	install -m 0644 metadata.yaml config.yaml actions.yaml README.md LICENSE $(STAGE)/
	install -m 0644 charm/icon.svg charm/copyright $(STAGE)/
	sed -e "s/@ARCH@/$(ARCH)/" -e "s/@STARTED@/$$(git log -1 --format=%cI 2>/dev/null || echo 2026-01-01T00:00:00+00:00)/" charm/manifest.yaml.in > $(STAGE)/manifest.yaml

charm: stage
	rm -f $(CHARM_FILE)
	cd $(STAGE) && zip -q -X -y -r $(CURDIR)/$(CHARM_FILE) .
	@size=$$(stat -c %s $(CHARM_FILE)); echo "$(CHARM_FILE): $$size bytes; dispatch: $$(stat -c %s $(STAGE)/dispatch) bytes, $$(file -b $(STAGE)/dispatch | cut -d, -f1-5)"; \
	  test $$size -le 4194304 || { echo "$(CHARM_FILE) is over 4 MiB" >&2; exit 1; }

# The fake-unit tests need nothing; the real-parser tests need a venv with
# magnum and magnum-capi-helm from PyPI (made once, cached in target/).
venv-oslo: deps
	bash tests/venvs/oslo.sh

venv-openstack: deps
	bash tests/venvs/openstack.sh

# deps (group test) builds both venvs and kubectl's package.
test: deps
	MAGNUM_CAPI_REQUIRE_REAL=1 cargo test --locked --features faults

# The whole lifecycle on a booted Debian magnum unit (real systemd, real pip,
# real magnum), as assertions (test-real) or as a walk-through (demo).
# Root, systemd-nspawn; the unit's root filesystem is built once and cached.
# test-roll: three units of one application sharing the peer relation.
# test-e2e: verify and smoketest through the real Magnum API, with a real
# Keystone, RabbitMQ, MariaDB and Glance beside magnum, and a test
# management cluster the real driver and helm drive.
# SUITE=bookworm (default: magnum 15.0.1) or SUITE=trixie (magnum 20.0.0,
# 2025.1): the Debian release of the unit; each has its own cached rootfs.
SUITE ?= bookworm
test-real: charm
	SUITE=$(SUITE) bash tests/realunit/test-real.sh
	SUITE=$(SUITE) bash tests/realunit/test-roll.sh
	SUITE=$(SUITE) bash tests/realunit/test-e2e.sh

demo: charm
	SUITE=$(SUITE) bash tests/realunit/demo.sh

# Rust vs an ops charm vs a /bin/sh floor on a fake unit: BENCHMARKS.md.
bench: deps
	bash bench/run.sh

test-fast: deps
	cargo test --locked

lint: deps charm
	cargo fmt --all -- --check
	cargo clippy --locked --all-targets -- -D warnings
	cargo clippy --locked --features fake-cloud --bin fake-cloud -- -D warnings
	# The fuzz targets are their own crate: type-check them against the
	# charm's API here, so a change to it fails lint, not the fuzz step.
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo check --quiet --bins
	bash charm/lint.sh $(LINT_VENV) $(CHARM_FILE) $(STAGE)

# cargo fuzz targets (fuzz/): kubeconfig parsing, config validation, INI
# rendering; FUZZ_SECONDS per target (default 60).
fuzz: deps
	bash fuzz/run.sh

clean:
	cargo clean
	rm -rf build magnum-capi.charm magnum-capi-*.charm
