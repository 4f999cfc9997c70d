# insane: build, checks and tests. See README.md.
#
#   make            the kernel module, the ip(8) plugin iproute2/link_insane.so
#                   and the Go binaries (into build/)
#   make deps       install what the build and the VM tests need (root, apt)
#   make check      gofmt, go vet, staticcheck, and sparse + checkpatch
#   make unit       host unit tests (go test ./...)
#   make install-cni the CNI plugin into $(CNI_BIN_DIR) (/opt/cni/bin) as
#                   type "insane"
#   make vm-test    the kernel tests in a QEMU guest; RUN=regexp selects tests
#   make vm-shell   an interactive shell in the guest, module loaded
#   make demo       the article's three modes with real traffic, in the guest
#   make test       deps, all, check, unit and vm-test, stopping at a failure
#   make test-debug the guest tests on a KASAN/lockdep/UBSAN/kmemleak 6.1
#                   kernel (built once, ~40 min, then cached); not in make test
#   make torture    the torture, fault and fuzz tests at full size, in the
#                   guest (docs/reliability.md); make test runs them lighter
#   make test-cri   the CNI plugin under a real runtime in the guest:
#                   Debian's containerd and runc, crictl (fetched into
#                   $(CRI_DIR) first); not in make test
#   make bench      cost per packet in instructions (under QEMU icount) and,
#                   separately, the noisy 2-vCPU rates, loss accuracy,
#                   time-mode edges and memory per device, in the guest
#                   (docs/benchmarks.md); not in make test
#   make profile    perf flame graphs and top symbols per case, under icount
#                   (CASE=a,b,... SOURCE=pktgen,udp), into build/
#
# After make, build/vm-runner is also go test's -exec program (README.md):
#   go test -exec "$PWD/build/vm-runner" -tags vmtest ./tests/vm/guest -run X

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
	ca-certificates git dkms nftables jq
# What building the debug kernel (make test-debug) needs besides DEB_PACKAGES.
DEBUG_KERNEL_PACKAGES := flex bison bc libelf-dev libssl-dev
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

.PHONY: all module plugin go install-cni deps check unit vm-test vm-shell demo test test-debug torture test-cri cri-deps bench bench-deps bench-icount bench-noisy profile clean

all: module plugin go

module:
	$(MAKE) -C kernel KVER='$(KVER)'

plugin:
	$(MAKE) -C iproute2

go:
	@mkdir -p build
	CGO_ENABLED=0 $(GO) build -trimpath -o build/insane ./go/cmd/insane
	CGO_ENABLED=0 $(GO) build -trimpath -o build/insane-cni ./go/cmd/insane-cni
	$(GO) build -o $(RUNNER) ./tests/vm/runner

$(RUNNER): go

# The CNI plugin, as type "insane", into the CNI bin directory (containerd
# and CRI-O look in /opt/cni/bin unless configured otherwise).
CNI_BIN_DIR ?= /opt/cni/bin
install-cni:
	@mkdir -p build
	CGO_ENABLED=0 $(GO) build -trimpath -o build/insane-cni ./go/cmd/insane-cni
	install -D -m 0755 build/insane-cni $(DESTDIR)$(CNI_BIN_DIR)/insane

deps:
	@missing=$$(for p in $(DEB_PACKAGES) $(EXTRA_PACKAGES); do \
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
	$(MAKE) -C iproute2 check
	$(MAKE) -C kernel KVER='$(KVER)' dkms

unit:
	$(GO) test ./...
	$(MAKE) -C iproute2 check-cases

# A first, short boot with ipv6.disable=1 runs the tests that need a kernel
# without IPv6 (they skip in the main boot), unless RUN selects tests.
NOIPV6_RUN := ^TestRelayIPv6DisabledKernel$$
vm-test: module plugin $(RUNNER)
	$(if $(RUN),,$(VM) -mode test -run '$(NOIPV6_RUN)' -append ipv6.disable=1 -out build/vm-noipv6)
	$(VM) -mode test $(if $(RUN),-run '$(RUN)')

vm-shell: module plugin $(RUNNER)
	$(VM) -mode shell

demo: module plugin $(RUNNER)
	$(VM) -mode demo

# The kernel passes INSANE_TORTURE=full from its command line to init's
# environment, and so to the guest tests (tests/vm/guest/torture_*_test.go).
torture: VM_TIMEOUT = 40m
torture: module plugin $(RUNNER)
	$(VM) -mode test -run '$(or $(RUN),^TestTorture)' -append INSANE_TORTURE=full

# make test-cri runs TestCRI (tests/vm/guest/cri_test.go): pods made with
# crictl runp under containerd's CRI plugin, which runs ptp, host-local,
# loopback and insane from the guest's /opt/cni/bin. cri-deps puts into
# CRI_DIR, once, Debian's containerd and runc packages, unpacked with dpkg -x
# (nothing is installed or started on the host), and crictl, built with go
# install; the runner packs them into the guest (-cri).
CRI_DIR ?= $(CURDIR)/.cache/cri
CRI_PACKAGES := containerd runc
CRICTL_VERSION := v1.37.0
cri-deps:
	@mkdir -p '$(CRI_DIR)/debs'
	@if [ ! -x '$(CRI_DIR)/usr/bin/containerd' ] || [ ! -x '$(CRI_DIR)/usr/sbin/runc' ]; then \
		echo "make cri-deps: apt-get download $(CRI_PACKAGES), unpacked into $(CRI_DIR)"; \
		cd '$(CRI_DIR)/debs' && rm -f *.deb && \
		{ apt-get download $(CRI_PACKAGES) 2>/dev/null || \
		  { apt-get update -q && apt-get download $(CRI_PACKAGES); }; } && \
		for d in *.deb; do dpkg -x "$$d" '$(CRI_DIR)' && dpkg-deb -W --showformat='$${Package} $${Version}\n' "$$d"; done; \
	fi
	@if ! $(GO) version -m '$(CRI_DIR)/usr/bin/crictl' 2>/dev/null | grep -Eq '^[[:space:]]+mod[[:space:]]+sigs.k8s.io/cri-tools[[:space:]]+$(CRICTL_VERSION)[[:space:]]'; then \
		echo "make cri-deps: go install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION) into $(CRI_DIR)/usr/bin"; \
		GOBIN='$(CRI_DIR)/usr/bin' CGO_ENABLED=0 $(GO) install sigs.k8s.io/cri-tools/cmd/crictl@$(CRICTL_VERSION); \
	fi

test-cri: cri-deps module plugin $(RUNNER)
	$(VM) -mode test -cri '$(CRI_DIR)' -run '$(or $(RUN),^TestCRI)'

# make bench is two VM runs, each of which can be run alone:
#   bench-icount  the throughput phase in instructions: single-threaded TCG
#                 under -icount shift=0 with 1 vCPU, so guest time is
#                 instructions; both sources, every case, interleaved rounds;
#                 and the lateness of carrier flaps and edge events;
#   bench-noisy   the 2-vCPU run under multi-threaded TCG (wall-clock, noisy):
#                 1 and 2 sending CPUs, loss accuracy, burst loss against
#                 netem's gemodel, allocations, time-mode edges, carrier
#                 flaps and edge events, memory per device.
# BENCHFLAGS and NOISYFLAGS pass flags to the guest program in each (go run
# ./tests/vm/bench -h). The runner streams its output; the BENCH-JSON line it
# ends with is left out here, and the noisy run's is drawn as
# build/benchmarks.svg from the guest log.
#
# make profile records perf in the guest under icount for each case in CASE
# (keys as in the bench tables; p and q: the delay phase's insane pass delay
# 1ms and netem delay 1ms) and source in SOURCE, and writes
# build/profile-CASE-SOURCE.txt (top symbols, self), .folded and .svg (a
# flame graph). bench and profile install linux-perf (the guest's perf).
BENCH_PACKAGES := linux-perf
BENCHFLAGS ?=
NOISYFLAGS ?=
CASE ?= a,b,z,s,v
SOURCE ?= pktgen,udp
bench-deps:
	$(MAKE) deps EXTRA_PACKAGES='$(BENCH_PACKAGES)'

bench: bench-icount bench-noisy

bench-icount: bench-deps module plugin $(RUNNER)
	@echo "bench: host $$(nproc) cores, load average $$(cut -d' ' -f1-3 /proc/loadavg); under icount the figures do not depend on it"
	set -o pipefail; $(VM) -icount -out build/vm-bench -mode exec -guest-cmd 'insane-bench $(BENCHFLAGS)' | grep --line-buffered -v '^BENCH-JSON '

bench-noisy: bench-deps module plugin $(RUNNER)
	@echo "bench: host $$(nproc) cores, load average $$(cut -d' ' -f1-3 /proc/loadavg)"
	set -o pipefail; $(VM) -out build/vm-bench-noisy -mode exec -guest-cmd 'insane-bench -phases noisy,lines,acc,burst,alloc,edge,flap,mem $(NOISYFLAGS)' | grep --line-buffered -v '^BENCH-JSON '
	$(GO) run ./tests/vm/bench -render build/vm-bench-noisy/guest.log -svg build/benchmarks.svg

profile: bench-deps module plugin $(RUNNER)
	set -o pipefail; $(VM) -icount -out build/vm-profile -mode exec -guest-cmd 'insane-bench -profile $(CASE) -profile-source $(SOURCE)' | grep --line-buffered -v -E '^(PROFILE-|BENCH-JSON )'
	$(GO) run ./tests/vm/bench -profiles build/vm-profile/guest.log -profile-out build

# One step at a time, each in a new make so that KVER is read after deps.
test:
	$(MAKE) deps
	$(MAKE) all
	$(MAKE) check
	$(MAKE) unit
	$(MAKE) vm-test

# The kernel is cached in /var/cache/insane/debug-kernel (see
# tests/vm/debugkernel/build.sh); RUN and VMFLAGS work as for vm-test.
test-debug:
	$(MAKE) deps EXTRA_PACKAGES='$(DEBUG_KERNEL_PACKAGES)'
	tests/vm/debugkernel/run.sh $(if $(RUN),-run '$(RUN)') $(VMFLAGS)

clean:
	rm -rf build
	$(MAKE) -C kernel KVER='$(KVER)' clean
	$(MAKE) -C iproute2 clean
