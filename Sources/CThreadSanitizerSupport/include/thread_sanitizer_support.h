// Synchronization done in uninstrumented code, made visible to ThreadSanitizer (TSan builds only):
// c11_threads.c (librdkafka's threads and locks) and swift_mutex.c (Synchronization.Mutex's slow
// paths). In every other build these files compile to nothing but the query below.
#ifndef PARATOOL_THREAD_SANITIZER_SUPPORT_H
#define PARATOOL_THREAD_SANITIZER_SUPPORT_H

/// 1 when this build carries the ThreadSanitizer interpositions, else 0.
int paratool_thread_sanitizer_support(void);

#endif
