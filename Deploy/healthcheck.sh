#!/bin/bash
# Container health check for the ParaTool image, without curl: GET /healthz over bash's /dev/tcp.
# Port: $PARATOOL_METRICS_PORT, else 9464 (the worker's default). Healthy only on HTTP 200; the
# service answers 503 while loading the model, before joining its consumer group and while
# draining after SIGTERM.
set -u
port="${PARATOOL_METRICS_PORT:-9464}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 4 status <&3 || exit 1
case "$status" in
  "HTTP/1."?" 200"*) exit 0 ;;
  *) echo "healthz: ${status%$'\r'}" >&2; exit 1 ;;
esac
