// OpenBLAS's CBLAS interface and its thread-count controls (Debian: libopenblas-dev).
#pragma once
#include <cblas.h>
