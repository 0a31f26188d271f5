# medley's set-up, demo, tests and benchmarks, for Debian 12 and Ubuntu.
#
#   make demo    install what is missing, then run the loopback example
#                (examples/loopback) and print the URL to open in a browser
#   make test    install what is missing, then go vet and go test -race
#   make bench   run the benchmarks (docs/BENCHMARKS.md)
#   make fuzz    run each fuzz target for FUZZ_TIME (CI runs it after test)
#   make deps    install the missing system packages only
#
# deps installs with apt-get, as root or through sudo, without questions;
# a machine that has every package installs nothing.

# The Debian/Ubuntu packages the build and the tests need, in one place:
#   gcc, libc6-dev,   cgo (go test -race and go-astiav need all three);
#   pkg-config          libc6-dev is only a Recommends of gcc
#   graphviz          dot -Tsvg, which renders Pipeline.DOT in the tests
#   ca-certificates   HTTPS to the Go module proxy on a fresh machine
#   libav*-dev,       FFmpeg 5.1 headers and libraries for go-astiav v0.16.0
#   libsw*-dev          (internal/ffmpeg, codec); go-astiav links all seven,
#                       libavdevice and libswresample included
#   ffmpeg            the CLI the tests and benchmarks compare with
#   chromium          the headless browser (with its fake camera and
#                       microphone) that examples/loopback's test drives
#   gstreamer1.0-*    GStreamer as a real RTP peer of the RTP endpoint, and
#   gir1.2-gst-rtsp-  gst-rtsp-server (driven by /usr/bin/python3 through
#     server-1.0,       python3-gi) as the RTSP camera the Player plays
#     python3-gi
DEB_PACKAGES := gcc libc6-dev pkg-config graphviz ca-certificates \
	libavcodec-dev libavformat-dev libavfilter-dev libavutil-dev \
	libswscale-dev libswresample-dev libavdevice-dev ffmpeg chromium \
	gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good \
	gstreamer1.0-plugins-bad gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi

# Go lives in /usr/local/go/bin on our machines; use it when `go` is not on
# PATH already.
GOROOT_BIN ?= /usr/local/go/bin
ifeq ($(shell command -v go 2>/dev/null),)
export PATH := $(PATH):$(GOROOT_BIN)
endif
GO ?= go

# Overridable, to try the deps logic without touching the machine:
#   make deps APT_GET="echo apt-get" DEB_PACKAGES="graphviz no-such-package"
APT_GET ?= apt-get
# The demo serves its page on DEMO_ADDR; DEMO_FLAGS go to the program
# (e.g. DEMO_FLAGS=-ice-loopback for a browser started with
# --allow-loopback-in-peer-connection).
DEMO_ADDR ?= 127.0.0.1:8080
DEMO_FLAGS ?=
TEST_FLAGS ?= -race -count=1 -timeout 15m
BENCH_FLAGS ?= -benchmem

SHELL := /bin/bash

.PHONY: deps demo test bench fuzz check-go

deps:
	@set -euo pipefail; \
	missing=(); \
	for p in $(DEB_PACKAGES); do \
		[ "$$(dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$$p"); \
	done; \
	if [ $${#missing[@]} -eq 0 ]; then \
		echo "deps: system packages present: $(DEB_PACKAGES)"; exit 0; \
	fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=(); \
	elif command -v sudo >/dev/null; then \
		if [ -t 0 ]; then sudo=(sudo); else sudo=(sudo -n); fi; \
	else \
		echo "deps: missing $${missing[*]}: run as root, or install sudo" >&2; exit 1; \
	fi; \
	echo "deps: installing $${missing[*]}"; \
	apt=("$${sudo[@]}" env DEBIAN_FRONTEND=noninteractive $(APT_GET) -y -q); \
	if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then \
		"$${apt[@]}" update; \
	fi; \
	if ! "$${apt[@]}" install --no-install-recommends "$${missing[@]}"; then \
		echo "deps: install failed; updating the package lists and trying again"; \
		"$${apt[@]}" update; \
		"$${apt[@]}" install --no-install-recommends "$${missing[@]}"; \
	fi

check-go:
	@command -v $(GO) >/dev/null || { echo "go not found on PATH nor in $(GOROOT_BIN): install Go (https://go.dev/dl/) into /usr/local/go" >&2; exit 1; }

demo: deps check-go
	@echo "demo: starting examples/loopback; when it says so, open http://$(DEMO_ADDR)/ in a browser on this machine (Ctrl-C stops)"
	$(GO) run ./examples/loopback -addr $(DEMO_ADDR) $(DEMO_FLAGS)

test: deps check-go
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

bench: check-go
	$(GO) test -run '^$$' -bench . $(BENCH_FLAGS) ./...

# The fuzz targets, as package:Target; each runs FUZZ_TIME. New inputs that
# crash land in the package's testdata/fuzz, where `go test` replays them.
# -fuzzminimizetime 0: minimizing each new input first stalls short runs.
FUZZ_TIME ?= 60s
FUZZ_TARGETS := ./endpoint:FuzzProcessOffer ./endpoint:FuzzRTP ./endpoint:FuzzPlayer \
	./codec:FuzzVP8Depayload ./codec:FuzzH264Depayload ./codec:FuzzIndexStartCode
fuzz: check-go
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz: $$fn ($$pkg) for $(FUZZ_TIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZ_TIME) -fuzzminimizetime 0 $$pkg; \
	done
