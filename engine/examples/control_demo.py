#!/usr/bin/env python3
"""The worked example of engine/CONTROL.md: one msrpd talks MSRP to itself.

    msrpd serve --listen 127.0.0.1:2855 --control /tmp/msrpd.sock &
    python3 engine/examples/control_demo.py /tmp/msrpd.sock

Creates a passive session "demo-a" and an active session "demo-b" whose
paths name each other, sends one text from demo-b, and prints every frame
the engine writes until the text is delivered. Standard library only.
"""
import json
import socket
import struct
import sys


def send(sock, header, payload=b""):
    head = json.dumps(header).encode()
    sock.sendall(struct.pack(">II", len(head), len(payload)) + head + payload)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        more = sock.recv(n - len(data))
        if not more:
            raise SystemExit("the engine closed the control socket")
        data += more
    return data


def recv(sock):
    head_len, payload_len = struct.unpack(">II", recv_exact(sock, 8))
    header = json.loads(recv_exact(sock, head_len))
    return header, recv_exact(sock, payload_len)


def call(sock, header, payload=b""):
    send(sock, header, payload)
    while True:
        reply, body = recv(sock)
        print("<-", json.dumps(reply), body.decode(errors="replace"))
        if reply["type"] == "reply" and reply["id"] == header["id"]:
            if not reply["ok"]:
                raise SystemExit("refused: " + reply["error"])
            return reply


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else "/tmp/msrpd.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(path)
    call(sock, {"id": 1, "cmd": "subscribe"})
    stats = call(sock, {"id": 2, "cmd": "stats"})["stats"]
    me = stats["listen"][0]
    uri = lambda sid: "msrp://%s/%s;tcp" % (me, sid)
    call(sock, {"id": 3, "cmd": "create_session", "session_id": "demo-a",
                "role": "passive", "remote_path": [uri("demo-b")]})
    call(sock, {"id": 4, "cmd": "create_session", "session_id": "demo-b",
                "role": "active", "remote_path": [uri("demo-a")]})
    ready = 0
    while ready < 2:
        event, _ = recv(sock)
        print("<-", json.dumps(event))
        ready += event.get("event") == "session_ready"
    reply = call(sock, {"id": 5, "cmd": "send", "session_id": "demo-b",
                        "content_type": "text/plain"}, b"Hello over MSRP")
    while True:
        event, body = recv(sock)
        print("<-", json.dumps(event), body.decode(errors="replace"))
        if event.get("event") == "delivered" and event["message"] == reply["message"]:
            print("delivered")
            return
        if event.get("event") == "failed":
            raise SystemExit("failed: " + event["reason"])


main()
