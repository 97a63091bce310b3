#!/usr/bin/env bash
# check-generated.sh: regenerates the protobuf-c code and the Python client classes into a temporary
# directory and compares them with the committed copies (Sources/ParaToolProtoC,
# Deploy/clients/python/paratool_pb2.py); exits non-zero when they differ, so CI fails whenever
# paratool.proto changed without rerunning Protos/generate.sh.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
committed="$here/../Sources/ParaToolProtoC"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

mkdir -p "$tmp/c" "$tmp/python"
bash "$here/generate.sh" "$tmp/c" "$tmp/python"
if ! diff -r "$tmp/c" "$committed" || ! diff "$tmp/python/paratool_pb2.py" "$here/../Deploy/clients/python/paratool_pb2.py"; then
    echo "check-generated.sh: the generated code is out of date with Protos/paratool.proto;" \
         "run Protos/generate.sh and commit the result" >&2
    exit 1
fi
echo "check-generated.sh: generated protobuf-c code is up to date"
