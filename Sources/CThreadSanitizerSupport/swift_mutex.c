// Synchronization.Mutex's contended paths, made visible to ThreadSanitizer (TSan builds only).
// Mutex's uncontended lock and unlock are atomics inlined into the caller, which TSan sees; under
// contention they call `_MutexHandle._lockSlow` / `_unlockSlow` in the toolchain's uninstrumented
// libswiftSynchronization, so TSan misses that acquire and release and reports the data the lock
// protects as raced. Defined in the executable, these wrappers take precedence, forward to the
// library's functions, and tell TSan about the acquire (after locking) and the release (before
// unlocking) on the lock word's address, the address the inlined atomics use.
#include "thread_sanitizer_support.h"

#ifdef PARATOOL_TSAN
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>

void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

#define LOCK_SLOW "$s15Synchronization12_MutexHandleV9_lockSlowyys6UInt32VF"
#define UNLOCK_SLOW "$s15Synchronization12_MutexHandleV11_unlockSlowyyF"

// Swift methods of a borrowed `_MutexHandle`: the handle's address is `self` (swift_context is
// clang's spelling of Swift's self register), the thread id the one argument of the lock path.
typedef __attribute__((swiftcall)) void (*lock_slow_fn)(uint32_t, __attribute__((swift_context)) void *);
typedef __attribute__((swiftcall)) void (*unlock_slow_fn)(__attribute__((swift_context)) void *);

__attribute__((swiftcall)) void paratool_mutex_lock_slow(uint32_t thread, __attribute__((swift_context)) void *handle) __asm__(LOCK_SLOW);
__attribute__((swiftcall)) void paratool_mutex_unlock_slow(__attribute__((swift_context)) void *handle) __asm__(UNLOCK_SLOW);

static void *library_function(void **cache, const char *name) {
    void *fn = __atomic_load_n(cache, __ATOMIC_ACQUIRE);
    if (!fn) {
        fn = dlsym(RTLD_NEXT, name);
        __atomic_store_n(cache, fn, __ATOMIC_RELEASE);
    }
    return fn;
}

__attribute__((swiftcall)) void paratool_mutex_lock_slow(uint32_t thread, __attribute__((swift_context)) void *handle) {
    static void *cache;
    ((lock_slow_fn)library_function(&cache, LOCK_SLOW))(thread, handle);
    __tsan_acquire(handle);
}

__attribute__((swiftcall)) void paratool_mutex_unlock_slow(__attribute__((swift_context)) void *handle) {
    static void *cache;
    __tsan_release(handle);
    ((unlock_slow_fn)library_function(&cache, UNLOCK_SLOW))(handle);
}
#endif
