# vhdfs — see README.md. `make` builds build/{libvhd.a,vhd,vhdfs};
# `make asan` the same under ASan+UBSan into build/asan/; `make check` runs
# every test (unit and integration) and ends with "N passed, N failed".

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
CC       ?= cc
OPT      ?= -O2 -g
SANITIZE ?=

PKGS_FUSE := fuse3
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
	-D_FILE_OFFSET_BITS=64 -pthread $(OPT)
ifneq ($(SANITIZE),)
CFLAGS_BASE += -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
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

LIBVHD := $(BUILD)/libvhd.a
LIBS   := -luuid -pthread

# Keep object files: make would otherwise delete them as intermediates and
# print the "rm" after the test summary, which must stay the last line.
.SECONDARY:

.PHONY: all asan check check-unit check-integration asan-check tests \
	install uninstall clean format-check demo bench-floor bench

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
	$(CC) $(CFLAGS_ALL) -Ivhd -Itests/unit -c $< -o $@

$(LIBVHD): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/vhd: $(CLI_OBJ) $(LIBVHD)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIBVHD) $(LIBS)

$(BUILD)/vhdfs: $(FUSE_OBJ) $(LIBVHD)
	$(CC) $(LDFLAGS) -o $@ $(FUSE_OBJ) $(LIBVHD) \
		$(shell pkg-config --libs $(PKGS_FUSE)) $(LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(UNIT_HELPER_OBJ) $(LIBVHD)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(UNIT_HELPER_OBJ) $(LIBVHD) -lcmocka $(LIBS)

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

# Every test: unit tests (plain and sanitized) and the integration tests
# that mount for real (root needed; they refuse to skip under CI=true).
check: tests asan
	tests/run.sh build build/asan

check-unit: tests
	tests/run.sh --unit-only build

asan-check: asan
	tests/run.sh --unit-only build/asan

demo: all
	scripts/demo.sh

format-check:
	clang-format --dry-run -Werror vhd/*.[ch] vhd/cli/*.[ch] fuse/*.[ch] \
		tests/unit/*.[ch] tests/interop/*.c tests/bench/*.c

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
		$(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BUILD)/vhd $(BUILD)/vhdfs $(DESTDIR)$(PREFIX)/bin/
	install -m 644 vhd/cli/vhd.1 fuse/vhdfs.1 $(DESTDIR)$(PREFIX)/share/man/man1/

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/vhd $(DESTDIR)$(PREFIX)/bin/vhdfs \
		$(DESTDIR)$(PREFIX)/share/man/man1/vhd.1 \
		$(DESTDIR)$(PREFIX)/share/man/man1/vhdfs.1

clean:
	rm -rf build
