// pt_return_freed_memory: glibc's malloc_trim, which Swift's Glibc module does not expose.
#include "allocator.h"

#if defined(__GLIBC__)
#include <malloc.h>
int pt_return_freed_memory(void) { return malloc_trim(0); }
#else
int pt_return_freed_memory(void) { return 0; }
#endif
