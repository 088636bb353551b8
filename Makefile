# torstitch — build, test, benchmark and demo.
# `make demo` and `make test` install what they need on a fresh Debian 12
# machine as root (Debian packages via apt-get, Go modules via the proxy).

SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
GOFLAGS_TEST ?= -count=1 -timeout 15m
PKGS := ./...

# Debian packages that serve as real peers in tests and in the lab.
APT_PKGS := openvswitch-switch openvswitch-common openvswitch-vtep ovn-central ovn-controller-vtep frr gobgpd \
	iproute2 iputils-ping ethtool tcpdump iperf3 python3-scapy

BIN := bin
CMDS := $(notdir $(wildcard cmd/*))

.PHONY: all build deps test test-unit generate generate-check lint bench demo demo-destroy clean

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
test: deps generate-check lint
	@mkdir -p $(BIN) && rm -f $(E2E_REPORT)
	TORSTITCH_E2E_REPORT=$(E2E_REPORT) $(GO) test $(GOFLAGS_TEST) $(PKGS)
	@if [ -f $(E2E_REPORT) ]; then echo; cat $(E2E_REPORT); fi

test-unit:
	$(GO) test -short $(PKGS)

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m $(BENCHPKGS)

BENCHPKGS ?= ./...

# DEMO_FLAGS=--destroy tears the lab down at the end; else `make demo-destroy`.
DEMO_FLAGS ?=
demo: build
	$(BIN)/torlab demo $(DEMO_FLAGS)

demo-destroy:
	@if [ -x $(BIN)/torlab ]; then $(BIN)/torlab destroy containerlab/stitch.clab.yml; \
	else $(GO) run ./cmd/torlab destroy containerlab/stitch.clab.yml; fi

clean:
	rm -rf $(BIN)
