// C11 threads (<threads.h>) routed through POSIX threads, compiled only into ThreadSanitizer
// builds. Debian's librdkafka creates its threads and locks with glibc's C11 functions, which
// call glibc's pthread internals directly, past ThreadSanitizer's pthread interceptors: TSan then
// meets threads it never saw start (it aborts with "CHECK failed ... thr->slot") and misses every
// lock librdkafka takes before calling back into Swift. Defined in the executable, these
// definitions take precedence over glibc's for librdkafka, and each forwards to the pthread
// function glibc's own implementation uses, which TSan intercepts. Other builds contain nothing.
#include "thread_sanitizer_support.h"

#ifdef PARATOOL_TSAN
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>

int paratool_thread_sanitizer_support(void) { return 1; }

static int status(int err) {
    switch (err) {
    case 0: return thrd_success;
    case EBUSY: return thrd_busy;
    case ETIMEDOUT: return thrd_timedout;
    case ENOMEM: return thrd_nomem;
    default: return thrd_error;
    }
}

struct start { thrd_start_t body; void *arg; };

static void *run(void *p) {
    struct start s = *(struct start *)p;
    free(p);
    return (void *)(intptr_t)s.body(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t body, void *arg) {
    struct start *s = malloc(sizeof *s);
    if (!s) return thrd_nomem;
    s->body = body;
    s->arg = arg;
    int err = pthread_create((pthread_t *)thr, NULL, run, s);
    if (err) free(s);
    return status(err);
}

int thrd_join(thrd_t thr, int *res) {
    void *value = NULL;
    int err = pthread_join((pthread_t)thr, &value);
    if (!err && res) *res = (int)(intptr_t)value;
    return status(err);
}

thrd_t thrd_current(void) { return (thrd_t)pthread_self(); }

int mtx_init(mtx_t *m, int type) {
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
    int err = pthread_mutex_init((pthread_mutex_t *)m, &attr);
    pthread_mutexattr_destroy(&attr);
    return status(err);
}

int mtx_lock(mtx_t *m) { return status(pthread_mutex_lock((pthread_mutex_t *)m)); }
int mtx_trylock(mtx_t *m) { return status(pthread_mutex_trylock((pthread_mutex_t *)m)); }
int mtx_unlock(mtx_t *m) { return status(pthread_mutex_unlock((pthread_mutex_t *)m)); }
void mtx_destroy(mtx_t *m) { pthread_mutex_destroy((pthread_mutex_t *)m); }

int cnd_init(cnd_t *c) { return status(pthread_cond_init((pthread_cond_t *)c, NULL)); }
int cnd_signal(cnd_t *c) { return status(pthread_cond_signal((pthread_cond_t *)c)); }
int cnd_broadcast(cnd_t *c) { return status(pthread_cond_broadcast((pthread_cond_t *)c)); }
int cnd_wait(cnd_t *c, mtx_t *m) { return status(pthread_cond_wait((pthread_cond_t *)c, (pthread_mutex_t *)m)); }
int cnd_timedwait(cnd_t *restrict c, mtx_t *restrict m, const struct timespec *restrict until) {
    return status(pthread_cond_timedwait((pthread_cond_t *)c, (pthread_mutex_t *)m, until));
}
void cnd_destroy(cnd_t *c) { pthread_cond_destroy((pthread_cond_t *)c); }

void call_once(once_flag *flag, void (*body)(void)) { pthread_once((pthread_once_t *)flag, body); }

#else

int paratool_thread_sanitizer_support(void) { return 0; }

#endif
