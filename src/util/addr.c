/*
 * addr.c - socket addresses as text (see addr.h).  IPv6 endpoints take
 * brackets around the address (RFC 3986's form), so that the port after
 * the last colon cannot be read as part of it; tracklog_ip() reads them
 * back.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>

#include "util/addr.h"

void
addr_ip(const struct sockaddr *sa, char *out, size_t len)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
	const char *ok = NULL;

	if (sa->sa_family == AF_INET)
		ok = inet_ntop(AF_INET,
		    &((const struct sockaddr_in *)sa)->sin_addr, out,
		    (socklen_t)len);
	else if (sa->sa_family == AF_INET6 &&
	         IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
		ok = inet_ntop(
		    AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)len);
	else if (sa->sa_family == AF_INET6)
		ok = inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)len);
	if (ok == NULL)
		snprintf(out, len, "?");
}

unsigned
addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return 0;
}

void
addr_endpoint(const struct sockaddr *sa, char *out, size_t len)
{
	char ip[ADDR_IP_MAX];

	addr_ip(sa, ip, sizeof(ip));
	if (sa->sa_family == AF_INET6 &&
	    !IN6_IS_ADDR_V4MAPPED(
	        &((const struct sockaddr_in6 *)sa)->sin6_addr))
		snprintf(out, len, "[%s]:%u", ip, addr_port(sa));
	else if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)
		snprintf(out, len, "%s:%u", ip, addr_port(sa));
	else
		snprintf(out, len, "?");
}
