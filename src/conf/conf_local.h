/*
 * conf_local.h - the built-in receive connector of local submissions
 * (sluice-sendmail over [Transport] LocalSubmissionSocket).
 */
#ifndef SLUICE_CONF_LOCAL_H
#define SLUICE_CONF_LOCAL_H

#include "conf/conf.h"

/* Its name, in logs, tracking rows and the connection accounting. */
#define CONF_LOCAL_CONNECTOR "Local Submission"

/* Fill conf->local_submission; -1 when out of memory. */
int conf_local_connector(struct conf *);
void conf_local_connector_free(struct conf *);

#endif
