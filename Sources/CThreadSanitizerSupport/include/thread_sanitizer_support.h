// Synchronization done in uninstrumented code, made visible to ThreadSanitizer (TSan builds only):
// c11_threads.c (librdkafka's threads and locks) and swift_mutex.c (Synchronization.Mutex's slow
// paths). In every other build these files compile to nothing but the query below.
#ifndef PARATOOL_THREAD_SANITIZER_SUPPORT_H
#define PARATOOL_THREAD_SANITIZER_SUPPORT_H

// PARATOOL_TSAN: defined when this translation unit is compiled with -fsanitize=thread.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PARATOOL_TSAN 1
#endif
#endif

/// 1 when this build carries the ThreadSanitizer interpositions, else 0.
int paratool_thread_sanitizer_support(void);

#endif
