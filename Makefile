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
CMDS := $(filter-out internal dist,$(notdir $(wildcard cmd/*)))

.PHONY: all build deps test test-unit generate generate-check lint bench bench-evpn demo demo-destroy clean images clab-env docs install deb

# The version stamped into every binary (vtep/buildinfo, --version, the API,
# torstitch_build_info): git describe, v0.0.0-gCOMMIT before the first v* tag.
ifeq ($(origin VERSION),undefined)
VERSION := $(shell d=$$(git describe --tags --match 'v[0-9]*' --always --dirty 2>/dev/null); \
	case "$$d" in (v[0-9]*) echo "$$d";; ("") echo v0.0.0;; (*) echo "v0.0.0-g$$d";; esac)
endif
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
BUILDINFO := github.com/torstitch/torstitch/vtep/buildinfo
LDFLAGS := -X $(BUILDINFO).version=$(VERSION) -X $(BUILDINFO).revision=$(REVISION)

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
	@echo "version $(VERSION)"
	@for c in $(CMDS); do echo "go build ./cmd/$$c"; CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/$$c ./cmd/$$c || exit 1; done

# Man pages (bin/man) and bash, zsh and fish completions (bin/completions),
# generated from the commands themselves (hidden gen-docs command).
docs: build
	@rm -rf $(BIN)/man $(BIN)/completions
	@for c in $(CMDS); do $(BIN)/$$c gen-docs --man $(BIN)/man --completions $(BIN)/completions || exit 1; done
	@echo "man pages in $(BIN)/man, completions in $(BIN)/completions"

# make install [PREFIX=/usr/local] [DESTDIR=]: toragent, torctl, torswitch,
# their man pages and completions, systemd units, an example configuration
# (installed as /etc/torstitch/toragent.yaml only where there is none).
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
INSTALL_CMDS := toragent torctl torswitch
install: docs
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man8 \
		$(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/torstitch $(DESTDIR)$(SYSCONFDIR)/default \
		$(DESTDIR)$(PREFIX)/share/doc/torstitch/examples $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/vendor-completions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(addprefix $(BIN)/,$(INSTALL_CMDS)) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 $(BIN)/man/torctl*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 0644 $(BIN)/man/toragent*.8 $(BIN)/man/torswitch*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 $(BIN)/completions/bash/torctl $(DESTDIR)$(PREFIX)/share/bash-completion/completions/
	install -m 0644 $(BIN)/completions/zsh/_torctl $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/
	install -m 0644 $(BIN)/completions/fish/torctl.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/
	for u in toragent torswitch; do sed -e 's|/usr/bin/|$(PREFIX)/bin/|g' -e 's|/etc/|$(SYSCONFDIR)/|g' cmd/dist/systemd/$$u.service \
		> $(DESTDIR)$(UNITDIR)/$$u.service && chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service || exit 1; done
	install -m 0644 cmd/dist/toragent.yaml $(DESTDIR)$(PREFIX)/share/doc/torstitch/examples/
	[ -e $(DESTDIR)$(SYSCONFDIR)/torstitch/toragent.yaml ] || install -m 0640 cmd/dist/toragent.yaml $(DESTDIR)$(SYSCONFDIR)/torstitch/
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/torswitch ] || install -m 0644 cmd/dist/torswitch.default $(DESTDIR)$(SYSCONFDIR)/default/torswitch
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# bin/torstitch_VERSION_ARCH.deb, built by nfpm (cmd/dist/nfpm.yaml) run from
# its module at a fixed version (not a dependency of this module).
NFPM := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
deb: docs
	VERSION=$(VERSION) ARCH=$$($(GO) env GOARCH) BUILD=$(BIN) $(GO) run $(NFPM) package \
		--config cmd/dist/nfpm.yaml --packager deb --target $(BIN)/

generate:
	$(GO) generate ./vtep/vtepdb/

# Fails when the committed generated models differ from what modelgen writes.
generate-check:
	@tmp=$$(mktemp -d); cp -r vtep/vtepdb/. $$tmp/; \
	$(GO) generate ./vtep/vtepdb/ && \
	if ! diff -r $$tmp vtep/vtepdb >/dev/null; then \
		diff -r $$tmp vtep/vtepdb; rm -rf $$tmp; echo "generated models drifted: run 'make generate' and commit"; exit 1; fi; \
	rm -rf $$tmp; echo "generated models up to date"

# staticcheck runs from its module at a fixed version (cached after the
# first run); its configuration is staticcheck.conf.
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

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
	@$(if $(filter 0,$(TEST_FUZZTIME)),echo "fuzzing skipped (TEST_FUZZTIME=0)",$(MAKE) --no-print-directory fuzz-short FUZZTIME=$(TEST_FUZZTIME))

test-unit:
	$(GO) test -short $(PKGS)

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 30m $(BENCHPKGS)

BENCHPKGS ?= ./...

# EVPN route intake against FRR 8.4, same run, median of EVPN_BENCH_RUNS per size
# (issue 18; the instrument is ../shared/bench/perf-evpn-install.sh; root). Not part of make test.
EVPN_BENCH_RUNS ?= 3
EVPN_BENCH_SIZES ?= 1000 10000 100000
bench-evpn:
	evpn/bench/bench-evpn.sh -r $(EVPN_BENCH_RUNS) $(EVPN_BENCH_SIZES)

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

# containerlab's first: it names /run/netns/clab-stitch-NODE after its
# containers, the names torlab's namespaces have.
demo-destroy:
	@t=$(BIN)/torlab; [ -x $$t ] || t="$(GO) run ./cmd/torlab"; \
	if $(CLAB_ENV) status >/dev/null 2>&1; then $$t destroy --runtime containerlab containerlab/stitch.clab.yml; fi; \
	$$t destroy containerlab/stitch.clab.yml

clean:
	rm -rf $(BIN)

# Fuzzing (issue 15). The committed seed corpora run in every `go test`;
# these targets explore further: fuzz-short for FUZZTIME (10s) each, fuzz for
# 10 minutes each (FUZZTIME=1h make fuzz for longer). `make test` ends with
# fuzz-short at TEST_FUZZTIME (10,000 inputs) each, about 40 s on a warm build
# cache (TEST_FUZZTIME=0 leaves it out). A count, not a duration: a duration
# -fuzztime can fail at its deadline with "context deadline exceeded" and no
# crasher (Go's fuzzing coordinator, golang/go#75804, fixed only in Go 1.27;
# seen in CI on 2026-12-04). A crasher fails the run and stays in the
# package's testdata/fuzz/FuzzX/ (go test -run 'FuzzX/NAME' replays it).
FUZZTIME ?= 10s
TEST_FUZZTIME ?= 10000x
FUZZ_TARGETS := ./vtep/agent/config:FuzzParse ./vtep/api:FuzzHandler ./vtep/agent/store:FuzzDecodeBindings \
	./vtep/agent/store:FuzzDecodeOwners ./evpn:FuzzDecodePath ./evpn:FuzzDecodePathFields ./testbed/clab:FuzzParse
.PHONY: fuzz fuzz-short
fuzz-short:
	@set -e; for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; echo "fuzz $$pkg $$fn $(FUZZTIME)"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s; done
fuzz:
	$(MAKE) fuzz-short FUZZTIME=$(if $(filter command line,$(origin FUZZTIME)),$(FUZZTIME),10m)
