/* notify.h - systemd's service notifications (sd_notify(3)): readiness, status, watchdog */
#pragma once

#include <event2/event.h>

/*
 * Take NOTIFY_SOCKET and the watchdog period (WATCHDOG_USEC, WATCHDOG_PID)
 * from the environment and remove them there, so that workers and the
 * programs they start inherit none of them. Call before anything is spawned.
 * Every other notify_* call is a no-op when NOTIFY_SOCKET was not set.
 */
void notify_init(void);
/*
 * The client socket listens: send READY=1 as soon as every worker slot has
 * answered its handshake, keep STATUS= current (checked each second, sent
 * when it changed) and send WATCHDOG=1 at half the watchdog period, all from
 * timers on base.
 */
void notify_start(struct event_base *base);
/* A reload begins: RELOADING=1 with MONOTONIC_USEC= (when READY=1 was sent). */
void notify_reloading(void);
/* The reload is done: READY=1 again (when READY=1 was sent before). */
void notify_reloaded(void);
/* A graceful stop begins: STOPPING=1. */
void notify_stopping(void);
/* Stop the timers and close the notification socket. */
void notify_free(void);
