# Rhine -- one non-recursive Makefile for the whole tree.
#
#   make            optimised build in build/ (warnings are errors)
#   make test       installs missing deps, -Werror build, then every test under ASan+UBSan
#   make demo       origin + six mirrors + clients on loopback
#   make bench      benchmarks against nginx, nghttpd, rsync, curl
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS each
#
# Source layout drives the build: every manifest/*.c goes into libmanifest.a, every server/*.c
# into libserver.a, and so on; a directory's program has its main() in <dir>/<prog>_main.c.
# Unit tests are tests/unit/<dir>/test_<file>.c, fuzz targets tests/fuzz/fuzz_<name>.c.

MODE    ?= release
ifeq ($(MODE),asan)
BUILD   ?= build/asan
OPT     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD   ?= build
OPT     := -O2 -g
endif

CC      ?= cc
PKGS    := openssl libcurl libnghttp2 libevent libevent_openssl jansson yaml-0.1 libzstd
CFLAGS  := -std=c11 -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror \
           -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wvla \
           -fno-strict-aliasing -fPIC $(OPT) -Iinclude -I. $(EXTRA_CFLAGS)
LDFLAGS := $(OPT) $(EXTRA_LDFLAGS)
LIBS    := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lpthread
CMOCKA  := $(shell pkg-config --libs cmocka 2>/dev/null)

# --- sources -------------------------------------------------------------------------------
lib_srcs  = $(filter-out $(1)/%_main.c,$(wildcard $(1)/*.c))
MANIFEST_SRC := $(call lib_srcs,manifest)
SERVER_SRC   := $(call lib_srcs,server)
ORIGIN_SRC   := $(call lib_srcs,origin)
MIRROR_SRC   := $(call lib_srcs,mirror)
CLIENT_SRC   := $(call lib_srcs,client)
NET_SRC      := $(call lib_srcs,net)
AUDIT_SRC    := $(call lib_srcs,audit)

objs = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBMANIFEST := $(BUILD)/libmanifest.a
LIBSERVER   := $(BUILD)/libserver.a
LIBORIGIN   := $(BUILD)/liborigin.a
LIBMIRROR   := $(BUILD)/libmirror.a
LIBCLIENT   := $(BUILD)/librhine-client.a
LIBNET      := $(BUILD)/libnet.a
LIBAUDIT    := $(BUILD)/libaudit.a

# What each directory links, in link order (the dependency rule, see README).
DEPS_manifest := $(LIBMANIFEST)
DEPS_server   := $(LIBSERVER) $(LIBMANIFEST)
DEPS_origin   := $(LIBORIGIN) $(LIBSERVER) $(LIBNET) $(LIBMANIFEST)
DEPS_mirror   := $(LIBMIRROR) $(LIBSERVER) $(LIBNET) $(LIBMANIFEST)
DEPS_client   := $(LIBCLIENT) $(LIBNET) $(LIBMANIFEST)
DEPS_net      := $(LIBNET) $(LIBMANIFEST)
DEPS_audit    := $(LIBAUDIT) $(LIBNET) $(LIBMANIFEST)

PROG_MAINS := $(wildcard */*_main.c)
PROGS      := $(foreach m,$(PROG_MAINS),$(BUILD)/rhine-$(patsubst %_main,%,$(basename $(notdir $(m)))))

UNIT_SRC   := $(wildcard tests/unit/*/test_*.c)
UNIT_BINS  := $(patsubst %.c,$(BUILD)/%,$(UNIT_SRC))
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_REGR  := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/fuzz/%-regress,$(FUZZ_SRC))

.PHONY: all test test-unit test-fuzz-regress test-integration check-src deps demo bench fuzz clean
all: $(PROGS) $(LIBCLIENT)

# --- compile and archive -------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags $(PKGS) cmocka 2>/dev/null) -MMD -MP -c $< -o $@

$(LIBMANIFEST): $(call objs,$(MANIFEST_SRC))
$(LIBSERVER):   $(call objs,$(SERVER_SRC))
$(LIBORIGIN):   $(call objs,$(ORIGIN_SRC))
$(LIBMIRROR):   $(call objs,$(MIRROR_SRC))
$(LIBCLIENT):   $(call objs,$(CLIENT_SRC))
$(LIBNET):      $(call objs,$(NET_SRC))
$(LIBAUDIT):    $(call objs,$(AUDIT_SRC))
$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# --- programs: <dir>/<prog>_main.c -> build/rhine-<prog> -----------------------------------
define prog_rule
$(BUILD)/rhine-$(patsubst %_main,%,$(basename $(notdir $(1)))): $(call objs,$(1)) $$(DEPS_$(patsubst %/,%,$(dir $(1))))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS)
endef
$(foreach m,$(PROG_MAINS),$(eval $(call prog_rule,$(m))))

# --- unit tests: tests/unit/<dir>/test_x.c links <dir>'s libraries --------------------------
define unit_rule
$(patsubst %.c,$(BUILD)/%,$(1)): $(call objs,$(1)) $$(DEPS_$(word 3,$(subst /, ,$(1))))
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LIBS) $$(CMOCKA)
endef
$(foreach t,$(UNIT_SRC),$(eval $(call unit_rule,$(t))))

# --- fuzz targets, built as corpus regression tests ----------------------------------------
$(BUILD)/tests/fuzz/%-regress: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/regress_driver.o $(LIBSERVER) $(LIBMANIFEST)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# --- test ----------------------------------------------------------------------------------
# deps.sh installs only what is missing (one dpkg query per package when nothing is).
deps:
	@./scripts/deps.sh

# The release build is the warning-clean -Werror build; the tests run under ASan+UBSan.
test: deps
	$(MAKE) --no-print-directory all
	$(MAKE) --no-print-directory check-src
	$(MAKE) --no-print-directory MODE=asan test-unit
	$(MAKE) --no-print-directory MODE=asan test-fuzz-regress
	$(MAKE) --no-print-directory MODE=asan test-integration

check-src:
	./scripts/checksrc.sh

test-unit: $(UNIT_BINS) $(PROGS) $(LIBCLIENT)
	@./scripts/run-unit.sh $(UNIT_BINS)

test-fuzz-regress: $(FUZZ_REGR)
	@set -e; for f in $(FUZZ_REGR); do n=$$(basename $$f -regress | sed 's/^fuzz_//'); \
	    $$f tests/fuzz/corpus/$$n; done

test-integration: $(PROGS) $(LIBCLIENT) $(UNIT_BINS)
	@if ls integration/test_*.py >/dev/null 2>&1; then \
	    RHINE_BUILD=$(abspath $(BUILD)) /usr/bin/python3 -m pytest -q -p no:cacheprovider integration; \
	else echo "integration: no tests yet"; fi

# --- fuzz (clang + libFuzzer) --------------------------------------------------------------
FUZZ_SECONDS ?= 60
fuzz: deps
	@set -e; for s in $(FUZZ_SRC); do n=$$(basename $$s .c); \
	    $(MAKE) --no-print-directory MODE=fuzz BUILD=build/fuzz CC=clang \
	        EXTRA_CFLAGS=-fsanitize=fuzzer-no-link,address,undefined \
	        build/fuzz/libserver.a build/fuzz/libmanifest.a; \
	    clang -std=c11 -D_DEFAULT_SOURCE -Iinclude -I. -g -O1 -fsanitize=fuzzer,address,undefined \
	        -o build/fuzz/$$n $$s build/fuzz/libserver.a build/fuzz/libmanifest.a $(LIBS); \
	    mkdir -p build/fuzz/corpus-$$n; \
	    build/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) build/fuzz/corpus-$$n tests/fuzz/corpus/$${n#fuzz_}; \
	done

demo: deps
	$(MAKE) --no-print-directory all
	./scripts/demo.sh

bench: deps
	$(MAKE) --no-print-directory all
	./bench/run.sh

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# --- operations (issue 8): the fleet page's library, make install, check-ops ---------------
# Appended after the rules above, so rhine-fleet and the fleet unit tests get their libraries
# through extra prerequisite lines (their rules were expanded before DEPS_fleet existed).
FLEET_SRC  := $(call lib_srcs,fleet)
LIBFLEET   := $(BUILD)/libfleet.a
DEPS_fleet := $(LIBFLEET) $(LIBSERVER) $(LIBNET) $(LIBMANIFEST)
$(LIBFLEET): $(call objs,$(FLEET_SRC))
ifneq ($(wildcard fleet/fleet_main.c),)
$(BUILD)/rhine-fleet: $(DEPS_fleet)
endif
$(patsubst %.c,$(BUILD)/%,$(wildcard tests/unit/fleet/test_*.c)): $(DEPS_fleet)

PREFIX  ?= /usr/local
DESTDIR ?=
.PHONY: install check-ops
install: all
	BUILD=$(BUILD) PREFIX=$(PREFIX) DESTDIR=$(DESTDIR) CC=$(CC) LDFLAGS="$(LDFLAGS)" \
	    ./scripts/install.sh

check-ops: all
	BUILD=$(BUILD) ./scripts/check-ops.sh

# Keep intermediate objects (the fuzz targets' .o files) so a second run rebuilds nothing.
.SECONDARY:
