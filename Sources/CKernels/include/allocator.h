// The C allocator's one control the Tensor layer needs (ProcessMemory.returnFreedMemory).
#pragma once

/// Returns the memory the C allocator holds free to the system (glibc's malloc_trim; a no-op
/// elsewhere). Returns 1 when memory was released.
int pt_return_freed_memory(void);
