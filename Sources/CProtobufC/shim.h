// libprotobuf-c runtime (Debian: libprotobuf-c-dev); generated message code links against it.
#pragma once
#include <protobuf-c/protobuf-c.h>
