/*
 * status_queues.h - the queues as the status page and /metrics show them
 * (Get-Queue's table), read on a worker thread every
 * STATUS_QUEUES_SECONDS at most (less often when a reading takes long:
 * STATUS_QUEUES_CPU_SHARE), the last reading served meanwhile.
 */
#ifndef SLUICE_STATUS_QUEUES_H
#define SLUICE_STATUS_QUEUES_H

#include <stddef.h>

struct control_queue_info;
struct daemon;
struct qmgr;
struct status_queues;

struct status_queues *status_queues_new(struct daemon *, struct qmgr *);
/* Stops a reading in progress (waits for its thread). */
void status_queues_free(struct status_queues *);

/*
 * The last reading: *v and *n (valid until the next loop turn), and 1,
 * or 0 when there is none yet or it failed (the queue is unreadable:
 * *failed is set).  Starts a new reading when the last is older than
 * STATUS_QUEUES_SECONDS (or STATUS_QUEUES_CPU_SHARE times its CPU time)
 * and none is in progress.
 */
int status_queues_get(struct status_queues *,
    const struct control_queue_info **v, size_t *n, int *failed);

/* A reading is in progress (0 or 1); readings finished since start. */
int status_queues_reading(const struct status_queues *);
unsigned long status_queues_readings(const struct status_queues *);
/* The CPU seconds the last finished reading took (0 before the first). */
double status_queues_cpu(const struct status_queues *);

#endif
