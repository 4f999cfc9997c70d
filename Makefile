# insane: build, checks and tests. See README.md.
#
#   make            the kernel module and the Go binaries (into build/)
#   make deps       install what the build and the VM tests need (root, apt)
#   make check      gofmt, go vet, staticcheck, and sparse + checkpatch
#   make unit       host unit tests (go test ./...)
#   make vm-test    the kernel tests in a QEMU guest; RUN=regexp selects tests
#   make vm-shell   an interactive shell in the guest, module loaded
#   make demo       the article's three modes with real traffic, in the guest
#   make test       deps, all, check, unit and vm-test, stopping at a failure

SHELL := /bin/bash
# Keeps the last line of make test the VM runner's "vm: N passed, N failed".
MAKEFLAGS += --no-print-directory
GO ?= go
export GO

# The kernel the VM boots, and so the one the module is built for: the newest
# installed Debian cloud kernel headers (with their matching /boot/vmlinuz).
# Recursive, so that it is read after make deps has installed them.
KVER = $(shell ls /usr/src 2>/dev/null | sed -n 's/^linux-headers-\(.*-cloud-amd64\)$$/\1/p' | sort -V | tail -n 1)

DEB_PACKAGES := qemu-system-x86 linux-image-cloud-amd64 linux-headers-cloud-amd64 \
	busybox-static iproute2 ethtool sparse linux-source-6.1 kmod cpio gcc make perl \
	ca-certificates git dkms
STATICCHECK_VERSION := v0.8.2
CACHE_BIN := $(CURDIR)/.cache/bin
STATICCHECK := $(CACHE_BIN)/staticcheck

# RUN selects guest tests by regexp (as go test -run); VM_TIMEOUT bounds the
# whole VM run; VMFLAGS passes anything else to the runner (see
# go run ./tests/vm/runner -h).
RUN ?=
VM_TIMEOUT ?= 20m
VMFLAGS ?=
RUNNER := build/vm-runner
VM = $(RUNNER) -kver '$(KVER)' -timeout $(VM_TIMEOUT) $(VMFLAGS)

.PHONY: all module go deps check unit vm-test vm-shell demo test clean

all: module go

module:
	$(MAKE) -C kernel KVER='$(KVER)'

go:
	@mkdir -p build
	CGO_ENABLED=0 $(GO) build -trimpath -o build/insane ./go/cmd/insane
	$(GO) build -o $(RUNNER) ./tests/vm/runner

$(RUNNER): go

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${db:Status-Status}' $$p 2>/dev/null | grep -qx installed || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" != 0 ]; then \
			echo "make deps: missing Debian packages:" $$missing "(run as root)" >&2; exit 1; \
		fi; \
		echo "make deps: installing" $$missing; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -q && apt-get install -y -q --no-install-recommends $$missing </dev/null; \
	fi
	@if ! $(STATICCHECK) -version 2>/dev/null | grep -q '($(STATICCHECK_VERSION:v%=%))'; then \
		echo "make deps: installing staticcheck $(STATICCHECK_VERSION) into $(CACHE_BIN)"; \
		GOBIN=$(CACHE_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi

check:
	@bad=$$(gofmt -l .); if [ -n "$$bad" ]; then echo "gofmt -l: not formatted:" $$bad >&2; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags vmtest ./...
	@test -x $(STATICCHECK) || { echo "staticcheck not found: run make deps" >&2; exit 1; }
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags vmtest ./...
	$(MAKE) -C kernel KVER='$(KVER)' check
	$(MAKE) -C kernel KVER='$(KVER)' dkms

unit:
	$(GO) test ./...

vm-test: module $(RUNNER)
	$(VM) -mode test $(if $(RUN),-run '$(RUN)')

vm-shell: module $(RUNNER)
	$(VM) -mode shell

demo: module $(RUNNER)
	$(VM) -mode demo

# One step at a time, each in a new make so that KVER is read after deps.
test:
	$(MAKE) deps
	$(MAKE) all
	$(MAKE) check
	$(MAKE) unit
	$(MAKE) vm-test

clean:
	rm -rf build
	$(MAKE) -C kernel KVER='$(KVER)' clean
