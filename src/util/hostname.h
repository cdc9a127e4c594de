/*
 * hostname.h - is a string a host name as SMTP uses it (EHLO, Fqdn, smart
 * hosts, MX targets)?  Letters, digits and hyphens in labels of 1 to 63
 * characters, 253 at most, no empty label (so no trailing dot), and a
 * last label that is not all digits (an IPv4 address, or a mistyped one).
 */
#ifndef SLUICE_HOSTNAME_H
#define SLUICE_HOSTNAME_H

/*
 * A name the administrator wrote must also keep RFC 1123's rule that no
 * label starts or ends with a hyphen; a name another domain published
 * in the DNS (an MX target) is taken as the DNS has it.
 */
#define HOSTNAME_STRICT 0
#define HOSTNAME_FROM_DNS 1

/* 1 when s is a host name, else 0. */
int hostname_valid(const char *s, int how);

#endif
