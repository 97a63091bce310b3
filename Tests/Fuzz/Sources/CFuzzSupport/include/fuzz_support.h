// fuzz_support: the C side of the fuzz targets. libFuzzer's driver as an entry point (SwiftPM
// links an executable's entry as `<module>_main`, so each target hands libFuzzer its callback from
// there), and the heap bytes live during a stretch of a target, counted through
// AddressSanitizer's malloc and free hooks, so a target can assert that a hostile header does not
// make its parser allocate more than a stated bound.
#ifndef FUZZ_SUPPORT_H
#define FUZZ_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

/// What libFuzzer calls with each input.
typedef int (*fuzz_callback)(const uint8_t *data, size_t size);

/// Runs libFuzzer's driver (its command line in `argc`/`argv`) over `callback`; returns its exit status.
int fuzz_run_driver(int argc, char **argv, fuzz_callback callback);

/// Installs the hooks (once; later calls do nothing). Returns 0 when the process has no
/// AddressSanitizer (then nothing is counted).
int fuzz_allocations_install(void);

/// Starts counting: the live bytes and the peak are set to zero.
void fuzz_allocations_begin(void);

/// Stops counting and returns the peak of the bytes allocated since `fuzz_allocations_begin`
/// and not yet freed.
size_t fuzz_allocations_end(void);

#endif
