# Fuzzers: one per parser (GUIDE 3.13), and one for a whole inbound
# session.  `make fuzz` builds them with clang's libFuzzer and runs each for
# FUZZ_SECONDS (default 30), starting from tests/fuzz/seeds/NAME when it
# exists (new inputs go to build/fuzz/corpus_NAME).
FUZZ_SECONDS ?= 30
FUZZ_CC ?= clang
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 \
	-D_GNU_SOURCE -Isrc
FUZZ_LIB_SRC = $(filter-out $(MAINS),$(shell find src -name '*.c' | sort))
FUZZERS = command linereader reply conf dsn header session rules tlsrpt \
	sts_policy dns_packet

.PHONY: fuzz
fuzz:
	@mkdir -p build/fuzz
	@for f in $(FUZZERS); do \
		$(FUZZ_CC) $(FUZZ_FLAGS) -o build/fuzz/fuzz_$$f \
		    tests/fuzz/fuzz_$$f.c $(FUZZ_LIB_SRC) $(LIBS) || exit 1; \
		mkdir -p build/fuzz/corpus_$$f; \
		seeds=; [ -d tests/fuzz/seeds/$$f ] && seeds=tests/fuzz/seeds/$$f; \
		build/fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) \
		    -max_len=4096 build/fuzz/corpus_$$f $$seeds || exit 1; \
	done
