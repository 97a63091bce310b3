// fuzz_allocations: AddressSanitizer malloc/free hooks that keep the live and peak byte counts of
// the allocations made while counting is on (see include/fuzz_support.h).
#include "fuzz_support.h"

#include <stdatomic.h>

// Provided by the AddressSanitizer runtime (sanitizer/allocator_interface.h); weak so the target
// still links, and counts nothing, without it.
extern int __sanitizer_install_malloc_and_free_hooks(
    void (*malloc_hook)(const volatile void *, size_t), void (*free_hook)(const volatile void *))
    __attribute__((weak));
extern size_t __sanitizer_get_allocated_size(const volatile void *pointer) __attribute__((weak));
extern int __sanitizer_get_ownership(const volatile void *pointer) __attribute__((weak));

static atomic_int counting;
static atomic_long live;
static atomic_long peak;
static atomic_int installed;

static void on_malloc(const volatile void *pointer, size_t size) {
    (void)pointer;
    if (!atomic_load_explicit(&counting, memory_order_relaxed)) return;
    long now = atomic_fetch_add_explicit(&live, (long)size, memory_order_relaxed) + (long)size;
    long high = atomic_load_explicit(&peak, memory_order_relaxed);
    while (now > high && !atomic_compare_exchange_weak_explicit(&peak, &high, now, memory_order_relaxed,
                                                                memory_order_relaxed)) {
    }
}

static void on_free(const volatile void *pointer) {
    if (!atomic_load_explicit(&counting, memory_order_relaxed) || !pointer) return;
    if (!__sanitizer_get_ownership(pointer)) return;
    atomic_fetch_sub_explicit(&live, (long)__sanitizer_get_allocated_size(pointer), memory_order_relaxed);
}

int fuzz_allocations_install(void) {
    if (!__sanitizer_install_malloc_and_free_hooks || !__sanitizer_get_allocated_size || !__sanitizer_get_ownership)
        return 0;
    if (atomic_exchange(&installed, 1)) return 1;
    return __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}

void fuzz_allocations_begin(void) {
    atomic_store(&live, 0);
    atomic_store(&peak, 0);
    atomic_store(&counting, 1);
}

size_t fuzz_allocations_end(void) {
    atomic_store(&counting, 0);
    long high = atomic_load(&peak);
    return high > 0 ? (size_t)high : 0;
}
