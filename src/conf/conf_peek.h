/*
 * conf_peek.h - one [Transport] value read without loading the whole
 * configuration.  sluicectl's daemon commands and sluice-sendmail need
 * only where the daemon's sockets are; they must still find them when the
 * file has just been edited into something the daemon would refuse (that
 * is when `sluicectl reload` has to report the errors), and when it names
 * certificate keys the user running them cannot read.
 */
#ifndef SLUICE_CONF_PEEK_H
#define SLUICE_CONF_PEEK_H

#include <stddef.h>

/*
 * The value of key in [Transport], else its default from the key table,
 * with a relative path made absolute against the file's directory as
 * conf_load does.  ControlSocket defaults to QueueDirectory/sluice.sock.
 * 0 on success; -1 with a reason in why when the file cannot be read or
 * the key is not a [Transport] key.
 */
int conf_peek_transport(const char *path, const char *key, char *out,
    size_t len, char *why, size_t whylen);

#endif
