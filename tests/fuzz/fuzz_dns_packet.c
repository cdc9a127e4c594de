/*
 * fuzz_dns_packet.c - libFuzzer harness for the DNS response reader
 * (src/dns/dns_packet.c): a hostile message must give records inside the
 * answer's own buffer, or SERVFAIL with a reason and no records; never a
 * read outside the input (ASan) or a loop that does not end.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dns_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the question's type from the first octet: the callers' types */
	static const int types[] = {1, 28, 15, 12, 16, 52, 5, 2};
	const char *why;
	struct dns_answer *a;
	size_t total = 0;
	volatile unsigned sum = 0;

	if (size < 1)
		return 0;
	a = dns_packet_parse(data + 1, size - 1, types[data[0] % 8], &why);
	if (a == NULL)
		return 0;
	if (a->n > DNS_PACKET_RR_MAX || a->havedata != (a->n > 0) ||
	    memchr(a->canon, '\0', sizeof(a->canon)) == NULL)
		abort();
	if (why != NULL && (a->n != 0 || a->rcode != 2 || a->error != why))
		abort();
	for (size_t i = 0; i < a->n; i++) {
		/* each record lies inside the buffer the answer owns, in
		 * order; touching every octet lets ASan check it */
		if (a->data[i] != a->buf + total)
			abort();
		for (size_t k = 0; k < a->len[i]; k++)
			sum += a->data[i][k];
		total += a->len[i];
	}
	(void)sum;
	dns_answer_free(a);
	return 0;
}
