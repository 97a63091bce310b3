// librdkafka's C API and its in-process mock cluster (Debian: librdkafka-dev).
#pragma once
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
