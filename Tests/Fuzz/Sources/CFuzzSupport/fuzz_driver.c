// fuzz_driver: libFuzzer's driver as a function a Swift entry point can call (see include/fuzz_support.h).
#include "fuzz_support.h"

// libFuzzer's entry for programs that have a main of their own (FuzzerInterface.h).
extern int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

int fuzz_run_driver(int argc, char **argv, fuzz_callback callback) {
    return LLVMFuzzerRunDriver(&argc, &argv, callback);
}
