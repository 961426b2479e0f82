# vhdfs — see README.md. `make` builds build/{libvhd.a,vhd,vhdfs};
# `make asan` the same under ASan+UBSan into build/asan/; `make fuzz` the
# libFuzzer targets into build/fuzz/ (clang); `make tsan` the threaded unit
# tests under ThreadSanitizer into build/tsan/; `make check` runs every
# test (unit, integration, fuzz smoke, TSan) and ends with
# "N passed, N failed".

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
OPT      ?= -O2 -g
SANITIZE ?=
FUZZ     ?=
TSAN     ?=
# Seconds each fuzz target runs in `make fuzz-smoke` (and `make check`).
FUZZ_TIME ?= 20

PKGS_FUSE := fuse3
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
	-D_FILE_OFFSET_BITS=64 -pthread $(OPT)
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifneq ($(FUZZ),)
CFLAGS_BASE += -fsanitize=fuzzer-no-link
endif
ifneq ($(TSAN),)
CFLAGS_BASE += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif
VERSION := 0.1.0
CFLAGS_ALL := $(CFLAGS_BASE) -DVHDFS_VERSION='"$(VERSION)"' $(CFLAGS)

LIB_SRC  := $(wildcard vhd/*.c)
CLI_SRC  := $(wildcard vhd/cli/*.c)
FUSE_SRC := $(wildcard fuse/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_HELPERS := $(filter-out tests/unit/test_%.c,$(wildcard tests/unit/*.c))

LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
FUSE_OBJ := $(FUSE_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_HELPER_OBJ := $(UNIT_HELPERS:%.c=$(BUILD)/obj/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_HELPERS := $(filter-out tests/fuzz/fuzz_%.c,$(wildcard tests/fuzz/*.c))
# The control-line parser and the result escaping: fuse/ files with no
# FUSE in them, linked by their unit test and the fuzz targets.
CTL_OBJ := $(BUILD)/obj/fuse/ctlparse.o $(BUILD)/obj/fuse/escape.o
FUZZ_HELPER_OBJ := $(FUZZ_HELPERS:%.c=$(BUILD)/obj/%.o) $(CTL_OBJ)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/%)
# Unit tests that run threads: what the TSan build runs.
TSAN_TESTS := test_concurrency

LIBVHD := $(BUILD)/libvhd.a
LIBS   := -luuid -pthread

# Keep object files: make would otherwise delete them as intermediates and
# print the "rm" after the test summary, which must stay the last line.
.SECONDARY:

.PHONY: all asan check check-unit check-integration asan-check tests \
	install uninstall clean format-check demo bench-floor bench fuzz \
	fuzz-bins fuzz-smoke tsan tsan-bins tsan-check

all: $(LIBVHD) $(BUILD)/vhd $(BUILD)/vhdfs

tests: all $(UNIT_BIN)

$(BUILD)/obj/vhd/%.o: vhd/%.c $(wildcard vhd/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ivhd -c $< -o $@

$(BUILD)/obj/vhd/cli/%.o: vhd/cli/%.c $(wildcard vhd/*.h vhd/cli/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ivhd -c $< -o $@

$(BUILD)/obj/fuse/%.o: fuse/%.c $(wildcard vhd/vhd.h fuse/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ivhd $(shell pkg-config --cflags $(PKGS_FUSE)) \
		-c $< -o $@

$(BUILD)/obj/tests/unit/%.o: tests/unit/%.c $(wildcard vhd/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ivhd -Ifuse -Itests/unit -c $< -o $@

$(BUILD)/obj/tests/fuzz/%.o: tests/fuzz/%.c $(wildcard vhd/*.h fuse/*.h \
	tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Ivhd -Ifuse -Itests/fuzz -c $< -o $@

$(LIBVHD): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/vhd: $(CLI_OBJ) $(LIBVHD)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIBVHD) $(LIBS)

$(BUILD)/vhdfs: $(FUSE_OBJ) $(LIBVHD)
	$(CC) $(LDFLAGS) -o $@ $(FUSE_OBJ) $(LIBVHD) \
		$(shell pkg-config --libs $(PKGS_FUSE)) $(LIBS)

# A unit test of a fuse/ file without FUSE in it links that object too.
$(BUILD)/tests/test_ctlparse: EXTRA_OBJ = $(CTL_OBJ)
$(BUILD)/tests/test_ctlparse: $(CTL_OBJ)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_HELPER_OBJ) $(LIBVHD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(EXTRA_OBJ) $(UNIT_HELPER_OBJ) $(LIBVHD) \
		-lcmocka $(LIBS)

$(BUILD)/fuzz_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_HELPER_OBJ) $(LIBVHD)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-bins: $(FUZZ_BIN)

tsan-bins: $(TSAN_TESTS:%=$(BUILD)/tests/%)

# The yardstick daemon of scripts/bench.sh (not part of `all`).
bench-floor: $(BUILD)/bench-floor

$(BUILD)/bench-floor: tests/bench/floor.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(shell pkg-config --cflags $(PKGS_FUSE)) $< -o $@ \
		$(shell pkg-config --libs $(PKGS_FUSE))

bench: all bench-floor
	scripts/bench.sh

asan:
	$(MAKE) BUILD=build/asan SANITIZE=1 OPT='-O1 -g' tests

# libFuzzer targets (tests/fuzz/fuzz_*.c) under ASan+UBSan, built by clang.
fuzz:
	$(MAKE) BUILD=build/fuzz CC=clang SANITIZE=1 FUZZ=1 OPT='-O1 -g' \
		fuzz-bins

# Each fuzz target for FUZZ_TIME seconds from its seed corpus.
fuzz-smoke: fuzz
	FUZZ_TIME=$(FUZZ_TIME) tests/run.sh --fuzz build/fuzz

# The threaded unit tests, vhd and the daemon under ThreadSanitizer.
tsan:
	$(MAKE) BUILD=build/tsan CC=clang TSAN=1 OPT='-O1 -g' all tsan-bins

# Those unit tests and the mount tests marked `# asan: yes` with the TSan
# daemon (a race report makes it exit non-zero: the test fails).
tsan-check: tsan
	tests/run.sh --marked build/tsan

# Every test: unit tests (plain and sanitized) and the integration tests
# that mount for real (root needed; they refuse to skip under CI=true),
# the fuzz targets for FUZZ_TIME seconds each, the threaded unit tests
# and the marked mount tests under TSan.
check: tests asan fuzz tsan
	FUZZ_TIME=$(FUZZ_TIME) tests/run.sh build build/asan \
		--marked build/tsan --fuzz build/fuzz

check-unit: tests
	tests/run.sh --unit-only build

asan-check: asan
	tests/run.sh --unit-only build/asan

demo: all
	scripts/demo.sh

format-check:
	clang-format --dry-run -Werror vhd/*.[ch] vhd/cli/*.[ch] fuse/*.[ch] \
		tests/unit/*.[ch] tests/fuzz/*.[ch] tests/interop/*.c \
		tests/bench/*.c

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/vhd $(BUILD)/vhdfs $(DESTDIR)$(PREFIX)/bin/
	install -m 644 vhd/cli/vhd.1 fuse/vhdfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vhd $(DESTDIR)$(PREFIX)/bin/vhdfs \
		$(DESTDIR)$(PREFIX)/share/man/man1/vhd.1 \
		$(DESTDIR)$(PREFIX)/share/man/man1/vhdfs.1

clean:
	rm -rf build
