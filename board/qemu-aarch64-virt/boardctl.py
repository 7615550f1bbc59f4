#!/usr/bin/env python3
"""Small host-side helpers for the QEMU board (standard library only, any python3).

  boardctl.py freeport                       print a free TCP port on 127.0.0.1
  boardctl.py qmp SOCK 'JSON' [TIMEOUT]      run one QMP command, print its "return" as JSON
  boardctl.py send SOCK TEXT|-               write TEXT (Python escapes: \\n, \\x03), or stdin's bytes
                                             for "-", to the serial socket
  boardctl.py attach SOCK                    interactive serial console; Ctrl+C (or Ctrl+]) detaches
"""
import fcntl
import json
import os
import select
import socket
import struct
import sys
import termios
import time


def freeport():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def connect_unix(path, timeout):
    deadline = time.monotonic() + timeout
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def qmp(path, command, timeout=30.0):
    s = connect_unix(path, 5.0)
    s.settimeout(timeout)
    f = s.makefile("rwb")

    def read_reply():
        while True:
            line = f.readline()
            if not line:
                raise SystemExit("qmp: connection closed")
            msg = json.loads(line)
            if "event" in msg:
                continue
            return msg

    greeting = json.loads(f.readline())
    if "QMP" not in greeting:
        raise SystemExit("qmp: unexpected greeting %r" % greeting)
    f.write(b'{"execute":"qmp_capabilities"}\n')
    f.flush()
    read_reply()
    f.write(json.dumps(json.loads(command)).encode() + b"\n")
    f.flush()
    try:
        reply = read_reply()
    except (ConnectionResetError, SystemExit):
        # "quit" closes the socket before (or instead of) replying
        if json.loads(command).get("execute") == "quit":
            print("{}")
            return 0
        raise
    if "error" in reply:
        print(json.dumps(reply["error"]), file=sys.stderr)
        return 1
    print(json.dumps(reply.get("return", {})))
    return 0


def send(path, text):
    if text == "-":
        data = sys.stdin.buffer.read()
    else:
        data = text.encode("utf-8").decode("unicode_escape").encode("latin-1")
    s = connect_unix(path, 5.0)
    s.sendall(data)
    # QEMU drops what it has not read yet when we hang up (its chardev disconnects on HUP), and it
    # reads only as fast as the guest's UART takes bytes: a busy guest takes a while. Wait until the
    # socket's send queue is empty (SIOCOUTQ on a unix socket: bytes the peer has not read).
    deadline = time.monotonic() + 30.0
    while unread(s) > 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.02)
    s.close()


def unread(s):
    try:
        buf = fcntl.ioctl(s.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return 0
    return struct.unpack("i", buf)[0]


def attach(path):
    import termios
    import tty

    s = connect_unix(path, 5.0)
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd) if os.isatty(fd) else None
    try:
        if old is not None:
            tty.setraw(fd)
        while True:
            r, _, _ = select.select([fd, s], [], [])
            if s in r:
                data = s.recv(4096)
                if not data:
                    return 0
                os.write(sys.stdout.fileno(), data)
            if fd in r:
                data = os.read(fd, 1024)
                if not data:
                    return 0
                for stop in (b"\x03", b"\x1d"):
                    if stop in data:
                        s.sendall(data[: data.index(stop)])
                        return 0
                s.sendall(data)
    finally:
        if old is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, old)
        s.close()


def main(argv):
    if len(argv) >= 2 and argv[1] == "freeport":
        return freeport()
    if len(argv) in (4, 5) and argv[1] == "qmp":
        return qmp(argv[2], argv[3], float(argv[4]) if len(argv) == 5 else 30.0)
    if len(argv) == 4 and argv[1] == "send":
        return send(argv[2], argv[3])
    if len(argv) == 3 and argv[1] == "attach":
        return attach(argv[2])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
