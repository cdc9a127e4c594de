/*
 * fuzz_tlsrpt.c - libFuzzer harness for what TLS reporting reads from
 * DNS and what it writes from it: the _smtp._tls records (the input is
 * split at NUL bytes into up to four records) must parse or be refused,
 * and every accepted address must be printable ASCII without spaces, an
 * https: URL or a mailto: address that tlsrpt_mailto_addr() turns into
 * one address; a report message built for such an address must be
 * CRLF lines only.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tlsrpt/tlsrpt_mail.h"
#include "tlsrpt/tlsrpt_txt.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	const char *records[4];
	struct tlsrpt_rua rua;
	const char *why = NULL;
	size_t n = 0, start = 0;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t i = 0; i <= size && n < 4; i++)
		if (text[i] == '\0') {
			records[n++] = text + start;
			start = i + 1;
		}
	if (tlsrpt_txt_parse(records, n, &rua, &why) == 0) {
		if (rua.n == 0 || rua.n > TLSRPT_RUA_MAX)
			abort();
		for (size_t i = 0; i < rua.n; i++) {
			char addr[TLSRPT_URI_MAX];
			struct buf b;
			struct tlsrpt_mail m;

			for (const char *p = rua.uri[i]; *p != '\0'; p++)
				if (*p <= 0x20 || *p >= 0x7f)
					abort();
			if (strncasecmp(rua.uri[i], "mailto:", 7) != 0 ||
			    tlsrpt_mailto_addr(rua.uri[i], addr, sizeof(addr)) <
			        0)
				continue;
			memset(&m, 0, sizeof(m));
			m.from = "tlsrpt@sluice.test";
			m.to = addr;
			m.domain = "example.com";
			m.submitter = "sluice.test";
			m.report_id = "id@sluice.test";
			m.message_id = "m@sluice.test";
			m.gzip = "x";
			m.gzip_len = 1;
			buf_init(&b, 1 << 20);
			if (tlsrpt_mail_compose(&m, &b) == 0)
				for (size_t k = 0; k < b.len; k++)
					if ((b.data[k] == '\n' &&
					        (k == 0 ||
					            b.data[k - 1] != '\r')) ||
					    (b.data[k] == '\r' &&
					        b.data[k + 1] != '\n'))
						abort();
			buf_free(&b);
		}
	} else if (why == NULL) {
		abort();
	}
	free(text);
	return 0;
}
