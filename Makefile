# Sluice - build, run and test.
#
#   make         build build/sluiced, build/sluicectl and
#                build/sluice-sendmail (optimised)
#   make run     install what is missing, build, make a localhost
#                certificate and run sluiced -f -c etc/sluice.conf
#   make test    install what is missing, build with ASan/UBSan and run
#                every suite; the last line is "N passed, N failed"
#   make bench   acceptance benchmark against Postfix (bench/)
#   make format  clang-format every source file in place
#   make fuzz    build the parsers' libFuzzer harnesses and run each a while
#   make man     the man pages, in build/man (sluice.conf.5 from the key
#                table and docs/config.md, sluicectl.8 from the command
#                table)
#   make install install the programs, man pages, the systemd unit and,
#                when there is none yet, the production configuration;
#                PREFIX (/usr/local), DESTDIR, SYSCONFDIR (/etc), UNITDIR
#   make deb     a Debian package in build/deb/ (dpkg-buildpackage on a
#                copy of the tree, then lintian)

CC      ?= cc
PKGS     = libevent libevent_openssl openssl libunbound inih sqlite3 libcrypt \
           libpcre2-8 libsystemd zlib libcurl
WARN     = -Wall -Wextra -Werror -Wshadow -Wpointer-arith -Wcast-qual \
           -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE $(WARN) -Isrc \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread

BUILD   ?= build
OPT     ?= -O2 -g
SAN     ?=
CFLAGS_ALL = $(CFLAGS_BASE) $(OPT) $(SAN) $(CFLAGS)

MAINS    = src/sluiced.c src/ctl/sluicectl.c src/sendmail/sendmail.c
LIB_SRC  = $(filter-out $(MAINS),$(shell find src -name '*.c' | sort))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC = $(shell find tests/unit -name 'test_*.c' | sort)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

VERSION := $(shell sed -n 's/^\#define SLUICE_VERSION "\(.*\)"/\1/p' \
	src/version.h)
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
UNITDIR    ?= $(PREFIX)/lib/systemd/system
MANS = $(BUILD)/man/sluiced.8 $(BUILD)/man/sluicectl.8 \
       $(BUILD)/man/sluice-sendmail.8 $(BUILD)/man/sluice.conf.5

.PHONY: all asan deps run test unit bench format check-src clean man \
	install deb

all: $(BUILD)/sluiced $(BUILD)/sluicectl $(BUILD)/sluice-sendmail

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/libsluice.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/sluiced: $(BUILD)/obj/src/sluiced.o $(BUILD)/libsluice.a
	$(CC) $(OPT) $(SAN) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/sluicectl: $(BUILD)/obj/src/ctl/sluicectl.o $(BUILD)/libsluice.a
	$(CC) $(OPT) $(SAN) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/sluice-sendmail: $(BUILD)/obj/src/sendmail/sendmail.o \
    $(BUILD)/libsluice.a
	$(CC) $(OPT) $(SAN) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsluice.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/libsluice.a \
	    $(LIBS) -lcmocka

unit: $(UNIT_BIN)

# The sanitizer build used by the test suites.  SLUICE_TEST_HOOKS
# compiles in what only tests may use (the logs' clock: src/log/logclock.h).
asan:
	$(MAKE) BUILD=build/asan OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" \
	    CPPFLAGS="$(CPPFLAGS) -DSLUICE_TEST_HOOKS" all unit

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

man: $(MANS)

# sluice.conf(5): names and defaults from the key table, prose from
# docs/config.md; gen-conf-man fails when the two disagree.
$(BUILD)/man/sluice.conf.5: docs/config.md man/gen-conf-man $(BUILD)/sluicectl
	@mkdir -p $(dir $@)
	$(BUILD)/sluicectl config keys > $@.keys
	man/gen-conf-man $@.keys docs/config.md $(VERSION) > $@.tmp
	mv $@.tmp $@

$(BUILD)/man/sluicectl.8: man/sluicectl.8.in $(BUILD)/sluicectl
	@mkdir -p $(dir $@)
	$(BUILD)/sluicectl help --man > $@.commands
	sed -e 's/@VERSION@/$(VERSION)/' -e '/@COMMANDS@/r $@.commands' \
	    -e '/@COMMANDS@/d' $< > $@

$(BUILD)/man/%.8: man/%.8 src/version.h
	@mkdir -p $(dir $@)
	sed 's/@VERSION@/$(VERSION)/' $< > $@

# No users, directories or sendmail links here: the Debian package makes
# those (docs/operations.md, "Installing without the package").  An
# existing configuration is never replaced.
install: all man
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man5 \
	    $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSCONFDIR)/sluice
	install -m 0755 $(BUILD)/sluiced $(BUILD)/sluicectl \
	    $(BUILD)/sluice-sendmail $(DESTDIR)$(SBINDIR)
	install -m 0644 $(BUILD)/man/sluice.conf.5 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(BUILD)/man/sluiced.8 $(BUILD)/man/sluicectl.8 \
	    $(BUILD)/man/sluice-sendmail.8 $(DESTDIR)$(MANDIR)/man8
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    etc/dist/sluice.service > $(DESTDIR)$(UNITDIR)/sluice.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sluice.service
	test -e $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.conf || \
	    install -m 0644 etc/dist/sluice.conf \
	        $(DESTDIR)$(SYSCONFDIR)/sluice/sluice.conf

# Built from a copy of the tree, so that nothing debhelper writes lands
# in the source (debian/.debhelper, debian/sluice, debian/files, build/).
DEB_DIR = build/deb
deb: deps
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/sluice-$(VERSION)
	tar -cf - --exclude=./build --exclude=./.git --exclude=./run \
	    --exclude=__pycache__ --exclude=.pytest_cache . | \
	    tar -xf - -C $(DEB_DIR)/sluice-$(VERSION)
	cd $(DEB_DIR)/sluice-$(VERSION) && \
	    DEB_BUILD_OPTIONS="$(strip $(DEB_BUILD_OPTIONS) parallel=2)" \
	    dpkg-buildpackage -us -uc -b
	lintian --fail-on error $(DEB_DIR)/sluice_$(VERSION)_*.changes
	@ls $(DEB_DIR)/*.deb

format:
	clang-format -i $$(find src tests/unit tests/fuzz bench -name '*.[ch]')

clean:
	rm -rf build

include tests/fuzz/fuzz.mk

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
