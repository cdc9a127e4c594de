# Sluice - build, run and test.
#
#   make         build build/sluiced and build/sluicectl (optimised)
#   make run     install what is missing, build, make a localhost
#                certificate and run sluiced -f -c etc/sluice.conf
#   make test    install what is missing, build with ASan/UBSan and run
#                every suite; the last line is "N passed, N failed"
#   make bench   acceptance benchmark against Postfix (bench/)
#   make format  clang-format every source file in place
#   make fuzz    build the parsers' libFuzzer harnesses and run each a while

CC      ?= cc
PKGS     = libevent libevent_openssl openssl libunbound inih sqlite3 libcrypt \
           libcurl
WARN     = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-qual \
           -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE $(WARN) -Isrc \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

BUILD   ?= build
OPT     ?= -O2 -g
SAN     ?=
CFLAGS_ALL = $(CFLAGS_BASE) $(OPT) $(SAN) $(CFLAGS)

MAINS    = src/sluiced.c src/ctl/sluicectl.c
LIB_SRC  = $(filter-out $(MAINS),$(shell find src -name '*.c' | sort))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(shell find tests/unit -name 'test_*.c' | sort)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all asan deps run test unit bench format check-src clean

all: $(BUILD)/sluiced $(BUILD)/sluicectl

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libsluice.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sluiced: $(BUILD)/obj/src/sluiced.o $(BUILD)/libsluice.a
	$(CC) $(OPT) $(SAN) -o $@ $^ $(LIBS)

$(BUILD)/sluicectl: $(BUILD)/obj/src/ctl/sluicectl.o $(BUILD)/libsluice.a
	$(CC) $(OPT) $(SAN) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/libsluice.a \
	    $(LIBS) -lcmocka

unit: $(UNIT_BIN)

# The sanitizer build used by the test suites.
asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    all unit

deps:
	@scripts/setup-deps

run: deps all
	@scripts/make-cert run/localhost
	$(BUILD)/sluiced -f -c etc/sluice.conf

test: deps check-src
	@scripts/make-cert run/localhost
	@$(MAKE) --no-print-directory asan
	@/usr/bin/python3 tests/run-all

bench: deps all
	@bench/acceptance.sh
	@bench/tls.sh
	@bench/relay.sh
	@TLS=1 bench/relay.sh

check-src:
	@scripts/checksrc

format:
	clang-format -i $$(find src tests/unit tests/fuzz bench -name '*.[ch]')

clean:
	rm -rf build

include tests/fuzz/fuzz.mk

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
