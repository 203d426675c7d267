# vigil — build, test and run. Every entry point installs what is missing first (Debian packages, npm
# dependencies, bpffs/tracefs mounts), so `make run` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD := build
NODE := node_modules/.bin/node
CLANG ?= clang
CC ?= gcc
UNAME_M := $(shell uname -m)
ARCH := $(if $(filter x86_64,$(UNAME_M)),x86,$(if $(filter aarch64,$(UNAME_M)),arm64,$(UNAME_M)))

# Debian packages needed to build and run; tests additionally need real runtimes and peers to compare with.
DEB_BUILD := clang llvm libbpf-dev libbpf1 bpftool gcc make
DEB_TEST := $(DEB_BUILD) liburing-dev iproute2 libbpf-tools busybox-static podman runc conmon catatonit containernetworking-plugins iptables uidmap docker.io containerd nats-server

BPF_CFLAGS := -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I/usr/include/$(UNAME_M)-linux-gnu -Ibpf/include -I$(BUILD)
BPF_SRCS := $(wildcard bpf/*.bpf.c) $(wildcard test/bpf/*.bpf.c) $(wildcard bench/bpf/*.bpf.c)
BPF_OBJS := $(patsubst %.bpf.c,$(BUILD)/%.bpf.o,$(BPF_SRCS))
BPF_HDRS := $(wildcard bpf/include/*.h) $(wildcard test/bpf/*.h) $(wildcard bench/bpf/*.h)
C_TOOLS := $(patsubst bench/c/%.c,$(BUILD)/bench/%,$(wildcard bench/c/*.c))

.PHONY: layout all deps debs debs-test npm mounts build bpf typecheck test test-unit test-privileged run bench bench-deps clean

all: build

## deps: Debian packages + npm packages + mounts
deps: debs npm mounts
debs:
	@scripts/ensure-debs.sh $(DEB_BUILD)
	@command -v npm >/dev/null || scripts/ensure-debs.sh npm
debs-test:
	@scripts/ensure-debs.sh $(DEB_TEST)
npm: node_modules/.package-lock.json
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@
mounts:
	@scripts/ensure-mounts.sh

## build: vmlinux.h from the running kernel, every BPF object, the libbpf log shim and bench tools
build: deps bpf $(BUILD)/native/libvigil_shim.so $(BUILD)/native/libvigil_lines.so $(C_TOOLS)
bpf: $(BPF_OBJS)

$(BUILD)/vmlinux.h:
	@mkdir -p $(@D)
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

$(BUILD)/%.bpf.o: %.bpf.c $(BPF_HDRS) $(BUILD)/vmlinux.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/native/libvigil_shim.so: native/libbpf_log.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -shared -fPIC -o $@ $< -lbpf

# The pipeline's line writer for file and network events (native/lines.c): no libbpf, the record layout from bpf/include.
$(BUILD)/native/libvigil_lines.so: native/lines.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Ibpf/include -shared -fPIC -o $@ $< -lm

$(BUILD)/bench/%: bench/c/%.c bench/c/bench.h $(BPF_HDRS)
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Ibpf/include -o $@ $< -lbpf -lelf -lz

## layout: regenerate src/events/layout.generated.ts from the BTF of bpf/include/events.h
layout: deps $(BUILD)/vmlinux.h
	$(NODE) scripts/gen-layout.ts

typecheck: npm
	node_modules/.bin/tsc --noEmit -p .

## test: everything, privileged tests included (they fail instead of skipping when CI=true)
test: debs-test build typecheck
	$(NODE) scripts/gen-layout.ts --check
	$(NODE) --test --test-reporter=spec 'test/unit/**/*.test.ts'
	$(NODE) --test --test-reporter=spec --test-concurrency=1 'test/privileged/**/*.test.ts'

test-unit: npm
	$(NODE) --test --test-reporter=spec 'test/unit/**/*.test.ts'

test-privileged: build
	$(NODE) --test --test-reporter=spec --test-concurrency=1 'test/privileged/**/*.test.ts'

## run: the agent on its embedded defaults (ARGS="..." passes flags)
run: build
	bin/vigil run $(ARGS)

## bench: every benchmark; each writes its section of docs/benchmarks.md
bench: bench-deps
	npm run bench
## bench-deps: what the benchmarks run (peers such as opensnoop, busybox's httpd) and the build; every
## `npm run bench:<name>` makes it first, so that one works on a fresh machine too
bench-deps: debs-test build

clean:
	rm -rf $(BUILD)
