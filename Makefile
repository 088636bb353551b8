# torstitch — build, test, benchmark and demo.
# `make demo` and `make test` install what they need on a fresh Debian 12
# machine as root (Debian packages via apt-get, Go modules via the proxy).

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
GOFLAGS_TEST ?= -count=1 -timeout 25m
PKGS := ./...

# Debian packages that serve as real peers in tests and in the lab.
APT_PKGS := openvswitch-switch openvswitch-common openvswitch-vtep ovn-central ovn-controller-vtep frr gobgpd \
	iproute2 iputils-ping ethtool tcpdump iperf3 python3-scapy

BIN := bin
CMDS := $(notdir $(wildcard cmd/*))

.PHONY: all build deps test test-unit generate generate-check lint bench demo demo-destroy clean images clab-env

all: build

deps: ## install Debian packages (as root) and Go modules
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then echo "missing Debian packages:$$missing (run as root to install them)"; \
		else echo "installing Debian packages:$$missing"; apt-get update -q && \
			DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; fi; \
	fi
	$(GO) mod download

build: deps
	@mkdir -p $(BIN)
	@for c in $(CMDS); do echo "go build ./cmd/$$c"; CGO_ENABLED=0 $(GO) build -o $(BIN)/$$c ./cmd/$$c || exit 1; done

generate:
	$(GO) generate ./vtep/vtepdb/

# Fails when the committed generated models differ from what modelgen writes.
generate-check:
	@tmp=$$(mktemp -d); cp -r vtep/vtepdb/. $$tmp/; \
	$(GO) generate ./vtep/vtepdb/ && \
	if ! diff -r $$tmp vtep/vtepdb >/dev/null; then \
		diff -r $$tmp vtep/vtepdb; rm -rf $$tmp; echo "generated models drifted: run 'make generate' and commit"; exit 1; fi; \
	rm -rf $$tmp; echo "generated models up to date"

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

E2E_REPORT := $(CURDIR)/$(BIN)/e2e-report.txt

# The end-to-end lab tests append their measured outage and convergence
# times to $(E2E_REPORT); it is printed after a green run.
# As root, the E2E scenarios also run on containerlab: clab-env sets up a
# Docker engine and containerlab where there are none (cached in
# /var/cache/torstitch). CONTAINERLAB=0 leaves containerlab out.
test: deps generate-check lint $(if $(filter 0,$(CONTAINERLAB)),,clab-env)
	@mkdir -p $(BIN) && rm -f $(E2E_REPORT)
	TORSTITCH_E2E_REPORT=$(E2E_REPORT) TORSTITCH_CONTAINERLAB=$(TEST_CONTAINERLAB) $(GO) test $(GOFLAGS_TEST) $(PKGS)
	@if [ -f $(E2E_REPORT) ]; then echo; cat $(E2E_REPORT); fi

test-unit:
	$(GO) test -short $(PKGS)

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m $(BENCHPKGS)

BENCHPKGS ?= ./...

# The lab on containerlab + Docker (containerlab/setup/clab-env.sh: nothing is
# installed where both already work; else Debian's docker.io in its own
# network namespace and containerlab built from its Go module, cached).
CLAB_ENV := containerlab/setup/clab-env.sh
CONTAINERLAB ?= 1
TEST_CONTAINERLAB := $(if $(filter 0,$(CONTAINERLAB)),0,$(if $(filter 0,$(shell id -u)),1,))

clab-env:
	@if [ "$$(id -u)" = 0 ]; then $(CLAB_ENV) up >/dev/null; \
	else echo "not root: containerlab E2E runs only where $(CLAB_ENV) status finds an engine"; fi

# Thin images on a local Debian base: bin/ binaries + Debian packages from a
# local .deb cache (containerlab/images/build.sh), seconds each.
images: build
	containerlab/images/build.sh

# RUNTIME=containerlab|netns; default: containerlab when a Docker engine and
# containerlab are present ($(CLAB_ENV) status), else torlab's namespaces.
# DEMO_FLAGS=--destroy tears the lab down at the end; else `make demo-destroy`.
RUNTIME ?=
DEMO_FLAGS ?=
demo: build
	@rt="$(RUNTIME)"; if [ -z "$$rt" ]; then \
		if $(CLAB_ENV) status >/dev/null 2>&1; then rt=containerlab; else rt=netns; fi; fi; \
	echo "make demo: runtime $$rt (RUNTIME=containerlab|netns to choose)"; \
	if [ "$$rt" = containerlab ]; then $(CLAB_ENV) up >/dev/null && containerlab/images/build.sh || exit 1; fi; \
	$(BIN)/torlab demo --runtime $$rt $(DEMO_FLAGS)

demo-destroy:
	@t=$(BIN)/torlab; [ -x $$t ] || t="$(GO) run ./cmd/torlab"; \
	$$t destroy containerlab/stitch.clab.yml; \
	if $(CLAB_ENV) status >/dev/null 2>&1; then $$t destroy --runtime containerlab containerlab/stitch.clab.yml; fi

clean:
	rm -rf $(BIN)
