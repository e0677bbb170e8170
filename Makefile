# virtstoraged-go — see README.md. Two commands matter to a new user:
#   make run    start the daemon in the foreground under ./.run with a default pool
#   make test   install what the tests need (Debian, as root) and run every test
SHELL := /bin/bash
GO ?= go
PKGS := ./...
RUN_ROOT ?= $(CURDIR)/.run
BIN := bin/virtstoraged
# Debian packages the tests drive: real clients (virsh, virt-admin, python3-libvirt),
# qemu-img for non-raw volumes, scrub for wipe patterns, and the storage tools of the
# fs/logical backends. libvirt-daemon gives the reference libvirtd for differential tests.
# One line per feature, so that each names why its packages are here.
DEB_PKGS := libvirt-clients python3-libvirt qemu-utils scrub lvm2 parted e2fsprogs util-linux nfs-common libvirt-daemon
DEB_CMDS := virsh virt-admin qemu-img scrub pvcreate parted mkfs.ext4 losetup blkid showmount libvirtd
# xmllint (libxml2-utils) validates against libvirt's schemas (--validate).
DEB_PKGS += libxml2-utils
DEB_CMDS += xmllint
# polkitd and a D-Bus daemon: polkit authentication, tested on a private bus.
DEB_PKGS += polkitd dbus
DEB_CMDS += pkaction dbus-daemon
# python3-docutils renders the man page (rst2man) and dpkg-dev computes the package's
# libc dependency (dpkg-shlibdeps) for make install and make deb.
DEB_PKGS += python3-docutils dpkg-dev
DEB_CMDS += rst2man dpkg-shlibdeps
# open-iscsi (iscsiadm) and udev (by-path links): the iscsi pool.
DEB_PKGS += open-iscsi udev
DEB_CMDS += iscsiadm udevadm
# libvirt-daemon-driver-storage-rbd gives the reference libvirtd its rbd backend; the Ceph
# daemons and tools run the single-node cluster of the rbd tests (internal/cephlab) and
# the rbd backend's commands.
DEB_PKGS += libvirt-daemon-driver-storage-rbd ceph-mon ceph-mgr ceph-osd ceph-common
DEB_CMDS += ceph-mon ceph-mgr ceph-osd rbd rados
# The storage lab (internal/lab: Debian's kernel under QEMU over the host's userland)
# needs QEMU, a kernel, a static busybox for its initramfs, udev, and the storage stacks
# it proves: thin pools, an NFS server, an iSCSI target and initiator, multipath.
DEB_PKGS += qemu-system-x86 linux-image-amd64 busybox-static thin-provisioning-tools \
	nfs-kernel-server tgt multipath-tools sg3-utils
DEB_CMDS += qemu-system-x86_64 busybox thin_check exportfs tgtd multipathd sg_inq
# cryptsetup opens the LUKS volumes the lab makes (internal/labe2e/lukslab).
DEB_PKGS += cryptsetup-bin
DEB_CMDS += cryptsetup
# Files whose absence means the same (a kernel is no command).
DEB_FILES := /boot/vmlinuz-*
# The lab's packages: `make lab` runs them alone.
LAB_PKGS := ./internal/lab/ ./internal/labe2e/...

# The daemon's version, from cmd/virtstoraged/main.go unless given.
VERSION ?= $(shell sed -n 's/^var version = "\(.*\)"$$/\1/p' cmd/virtstoraged/main.go)
GO_BUILD_FLAGS ?=
GO_LDFLAGS ?= -X main.version=$(VERSION)

# make install (scripts/install.sh). The daemon reads libvirt's paths whatever PREFIX
# is, so the config and state directories stay under /etc and /var.
DESTDIR ?=
PREFIX ?= /usr/local
SBINDIR ?= $(PREFIX)/sbin
UNITDIR ?= $(PREFIX)/lib/systemd/system
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/virtstoraged-go
SYSCONFDIR ?= /etc
LOCALSTATEDIR ?= /var
RST2MAN ?= rst2man

# make deb (scripts/deb.sh): DEB_OUT/virtstoraged-go_VERSION-REVISION_ARCH.deb.
DEB_OUT ?= $(CURDIR)/bin
DEB_REVISION ?= 1
DEB_ARCH ?= $(shell dpkg --print-architecture 2>/dev/null || $(GO) env GOARCH)
DEB_MAINTAINER ?= virtstoraged-go maintainers <maintainers@virtstoraged-go.invalid>

.PHONY: all build build-daemon install deb run test test-go lab deps generate check-generated lint bench fuzz fuzz-short fuzz-long soak clean

all: build

build: build-daemon
	$(GO) build -o bin/xdrgen ./cmd/xdrgen

build-daemon:
	$(GO) build $(GO_BUILD_FLAGS) -ldflags "$(GO_LDFLAGS)" -o $(BIN) ./cmd/virtstoraged

install: build-daemon
	@BIN=$(BIN) DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) SBINDIR=$(SBINDIR) UNITDIR=$(UNITDIR) MANDIR=$(MANDIR) \
		DOCDIR=$(DOCDIR) SYSCONFDIR=$(SYSCONFDIR) LOCALSTATEDIR=$(LOCALSTATEDIR) RST2MAN=$(RST2MAN) \
		./scripts/install.sh

# Stripped and path-trimmed, as a distribution builds it.
deb:
	@VERSION=$(VERSION) DEB_REVISION=$(DEB_REVISION) DEB_ARCH=$(DEB_ARCH) DEB_MAINTAINER="$(DEB_MAINTAINER)" \
		GO=$(GO) MAKE="$(MAKE)" OUT=$(DEB_OUT) GO_BUILD_FLAGS=-trimpath \
		GO_LDFLAGS="-s -w -X main.version=$(VERSION)" ./scripts/deb.sh

# As root, make run installs the clients too; as another user it only says what is missing.
run: build
	@$(MAKE) --no-print-directory deps DEPS_OPTIONAL=1
	@./scripts/run.sh "$(RUN_ROOT)" "$(BIN)"

deps:
	@missing=""; for c in $(DEB_CMDS); do command -v $$c >/dev/null 2>&1 || PATH=$$PATH:/usr/sbin:/sbin command -v $$c >/dev/null 2>&1 || missing="$$missing $$c"; done; \
	for f in $(DEB_FILES); do [ -e "$$f" ] || missing="$$missing $$f"; done; \
	/usr/bin/python3 -c 'import libvirt' >/dev/null 2>&1 || missing="$$missing python3-libvirt"; \
	ls /usr/lib/*/libvirt/storage-backend/libvirt_storage_backend_rbd.so >/dev/null 2>&1 || missing="$$missing libvirt-daemon-driver-storage-rbd"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages (missing:$$missing)"; \
		if [ "$$(id -u)" != 0 ]; then \
			echo "run as root to install $(DEB_PKGS), or install them yourself" >&2; \
			if [ -n "$(DEPS_OPTIONAL)" ]; then exit 0; else exit 1; fi; \
		fi; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq --no-install-recommends $(DEB_PKGS) >/dev/null; \
	fi

test: deps lint test-go fuzz-short check-generated

# The daemon is built once up front and handed to the end-to-end packages, which
# would otherwise each build it while go test compiles the rest in parallel.
test-go:
	$(GO) build ./...
	$(GO) build -o $(BIN) ./cmd/virtstoraged
	VIRTSTORAGED_E2E_BIN=$(CURDIR)/$(BIN) PATH=$$PATH:/usr/sbin:/sbin $(GO) test -race -timeout 20m $(PKGS)

# The storage lab alone: boots Debian's kernel under QEMU and runs the real-stack
# tests (LVM, NFS, multipath) inside it. Root only; see internal/lab/doc.go.
lab: deps
	$(GO) build -o $(BIN) ./cmd/virtstoraged
	VIRTSTORAGED_E2E_BIN=$(CURDIR)/$(BIN) PATH=$$PATH:/usr/sbin:/sbin $(GO) test -count=1 -v -timeout 20m $(LAB_PKGS)

generate:
	$(GO) generate ./xdr/
	$(GO) tool wire gen ./cmd/virtstoraged/ >/dev/null
	$(GO) generate ./ports/

# Regenerates into the work tree and fails if anything differs from what is committed
# (or is new and untracked): generated code is committed with its source.
check-generated: generate
	@if ! git diff --quiet -- gen/ ports/mocks/ cmd/virtstoraged/wire_gen.go || \
	   [ -n "$$(git ls-files --others --exclude-standard -- gen/ ports/mocks/ cmd/virtstoraged/)" ]; then \
		echo "generated code is out of date: run 'make generate' and commit the result" >&2; \
		git status --short -- gen/ ports/mocks/ cmd/virtstoraged/ >&2; exit 1; \
	fi
	@echo "generated code is up to date"

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

bench:
	PATH=$$PATH:/usr/sbin:/sbin $(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	@if [ -x scripts/bench.sh ]; then ./scripts/bench.sh; fi

FUZZTIME ?= 10s
fuzz:
	@./scripts/fuzz.sh $(FUZZTIME)

# make test's share of fuzzing: a few thousand inputs a target mutate past the
# committed corpus, where a panic or an allocation bound usually trips first,
# in one to two seconds each. A count rather than a duration, because Go 1.26's
# fuzz coordinator can fail a timed run that ends while a worker is busy
# (scripts/fuzz.sh retries that; a counted run never meets it).
FUZZTIME_SHORT ?= 4000x
fuzz-short:
	@./scripts/fuzz.sh $(FUZZTIME_SHORT)

fuzz-long:
	@./scripts/fuzz.sh 5m

clean:
	rm -rf bin .run

# Not in CI: a 10-minute soak of the load's 200 clients (its mixed calls plus uploads
# and downloads; the daemon's RSS, threads, fds and latency printed every 30 s). The
# load of 200 clients × 10,000 calls runs in make test (TestLoad).
SOAK ?= 10m
SOAK_CLIENTS ?= 200
soak:
	VIRTSTORAGED_SOAK=$(SOAK) VIRTSTORAGED_SOAK_CLIENTS=$(SOAK_CLIENTS) $(GO) test -count=1 -v -timeout 4h \
		-run '^TestSoak$$' ./internal/reliability/
