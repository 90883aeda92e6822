#!/usr/bin/env python3
"""socket_copy.py SRC DST: copies SRC to DST through one TCP loopback
connection (sendfile on one end, recv_into a 1 MiB buffer and write on the
other, in two threads), the bare-socket baseline of `bench artifacts`.
Prints the seconds from connect to the last byte written to DST."""
import os
import socket
import sys
import threading
import time


def receive(listener, dst, done):
    conn, _ = listener.accept()
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    with conn, open(dst, "wb", buffering=0) as out:
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                break
            out.write(view[:n])
    done.append(time.monotonic())


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: socket_copy.py SRC DST")
    src, dst = sys.argv[1], sys.argv[2]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    done = []
    receiver = threading.Thread(target=receive, args=(listener, dst, done))
    receiver.start()
    start = time.monotonic()
    with socket.create_connection(listener.getsockname()) as sock, open(src, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        sent = 0
        while sent < size:
            sent += os.sendfile(sock.fileno(), f.fileno(), sent, size - sent)
    receiver.join()
    listener.close()
    if os.path.getsize(dst) != size:
        sys.exit("socket_copy.py: received %d of %d bytes" % (os.path.getsize(dst), size))
    print("%.3f" % (done[0] - start))


if __name__ == "__main__":
    main()
