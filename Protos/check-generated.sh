#!/usr/bin/env bash
# check-generated.sh: regenerates the protobuf-c code into a temporary directory and compares it
# with the committed copy in Sources/ParaToolProtoC; exits non-zero when they differ, so CI fails
# whenever paratool.proto changed without rerunning Protos/generate.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
committed="$here/../Sources/ParaToolProtoC"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

bash "$here/generate.sh" "$tmp"
if ! diff -r "$tmp" "$committed"; then
    echo "check-generated.sh: Sources/ParaToolProtoC is out of date with Protos/paratool.proto;" \
         "run Protos/generate.sh and commit the result" >&2
    exit 1
fi
echo "check-generated.sh: generated protobuf-c code is up to date"
