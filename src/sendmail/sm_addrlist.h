/*
 * sm_addrlist.h - the addresses in a To:, Cc: or Bcc: field (RFC 5322
 * 3.4 address-list), for sluice-sendmail -t.
 */
#ifndef SLUICE_SM_ADDRLIST_H
#define SLUICE_SM_ADDRLIST_H

#include <stddef.h>

/* Longest address taken (RFC 5321 4.5.3.1.3: a path is 256 octets). */
#define SM_ADDR_MAX 256

/*
 * Call fn with each address of field (the unfolded field body): display
 * names, comments and group names are dropped, "<...>" wins over the
 * text around it, unquoted blanks are removed, empty entries and empty
 * groups ("undisclosed-recipients:;") yield nothing.  Returns the number
 * of addresses, or -1 with *why set (an unbalanced quote, comment or
 * angle bracket, an address over SM_ADDR_MAX, or fn returning -1).
 */
int sm_addrlist_parse(const char *field, int (*fn)(void *arg, const char *addr),
    void *arg, const char **why);

#endif
