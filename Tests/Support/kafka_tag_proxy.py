#!/usr/bin/env python3
"""A loopback TCP proxy between librdkafka 2.0.2 and a Kafka-compatible broker (Tansu in the tests).

librdkafka 2.0.2 mis-skips KIP-482 tagged fields whose length is not 0 (it skips length-1 bytes),
so an ApiVersions v3 response that carries the optional top-level tags (SupportedFeatures,
FinalizedFeaturesEpoch, FinalizedFeatures, ZkMigrationReady) desynchronises its parser and the
connection never comes up. This proxy forwards every byte unchanged except that it drops those
top-level tags from ApiVersions responses (they are informational; Kafka itself omits them when
unset) and fixes the frame length. It listens on 127.0.0.1 only.

usage: kafka_tag_proxy.py LISTEN_PORT UPSTREAM_PORT   (prints "ready" when listening)
"""
import socket
import struct
import sys
import threading

API_VERSIONS = 18


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(sock):
    size = struct.unpack(">i", read_exact(sock, 4))[0]
    return read_exact(sock, size)


def uvarint(data, pos):
    shift = value = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7


def strip_api_versions_tags(body):
    """body = correlation id + ApiVersions v3 response; returns it without top-level tags."""
    pos = 4 + 2  # correlation id, error code
    count, pos = uvarint(body, pos)
    for _ in range(max(count - 1, 0)):
        pos += 6  # api key, min, max
        tags, pos = uvarint(body, pos)
        for _ in range(tags):
            _, pos = uvarint(body, pos)
            length, pos = uvarint(body, pos)
            pos += length
    pos += 4  # throttle time
    return body[:pos] + b"\x00"


def serve(client, upstream_port):
    upstream = socket.create_connection(("127.0.0.1", upstream_port))
    pending = {}  # correlation id -> (api key, api version)
    lock = threading.Lock()

    def close_both():
        for s in (upstream, client):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def client_to_broker():
        try:
            while True:
                frame = read_frame(client)
                key, version, corr = struct.unpack(">hhi", frame[:8])
                with lock:
                    pending[corr] = (key, version)
                upstream.sendall(struct.pack(">i", len(frame)) + frame)
        except (EOFError, OSError):
            pass
        finally:
            close_both()

    def broker_to_client():
        try:
            while True:
                frame = read_frame(upstream)
                corr = struct.unpack(">i", frame[:4])[0]
                with lock:
                    key, version = pending.pop(corr, (None, None))
                if key == API_VERSIONS and version is not None and version >= 3:
                    frame = strip_api_versions_tags(frame)
                client.sendall(struct.pack(">i", len(frame)) + frame)
        except (EOFError, OSError):
            pass
        finally:
            close_both()

    threading.Thread(target=client_to_broker, daemon=True).start()
    threading.Thread(target=broker_to_client, daemon=True).start()


def main():
    listen_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    print("ready", flush=True)
    while True:
        client, _ = server.accept()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        serve(client, upstream_port)


if __name__ == "__main__":
    main()
