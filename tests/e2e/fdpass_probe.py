"""Hand fds of files in a directory to other processes (SCM_RIGHTS, pidfd_getfd); print
what each side sees, so a run on a mount can be compared with one on a real directory."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import sys

libc = ctypes.CDLL(None, use_errno=True)


def sendmmsg(sock: int, messages: list[tuple[bytes, int | None]]) -> tuple[int, list[int]]:
    """sendmmsg(2) of (data, fd to pass or None) messages: its count and each msg_len."""
    keep = []
    vector = ctypes.create_string_buffer(64 * len(messages))
    for index, (data, fd) in enumerate(messages):
        buffer = ctypes.create_string_buffer(data, len(data))
        iov = ctypes.create_string_buffer(struct.pack("<QQ", ctypes.addressof(buffer), len(data)))
        control, length = 0, 0
        if fd is not None:
            cmsg = ctypes.create_string_buffer(struct.pack("<Qiii4x", 20, socket.SOL_SOCKET,
                                                           socket.SCM_RIGHTS, fd))
            control, length = ctypes.addressof(cmsg), 24
            keep.append(cmsg)
        keep += [buffer, iov]
        struct.pack_into("<QI4xQQQQi4xI4x", vector, 64 * index, 0, 0, ctypes.addressof(iov), 1,
                         control, length, 0, 0)
    count = libc.syscall(307, sock, vector, len(messages), 0)
    lengths = [struct.unpack_from("<I", vector, 64 * index + 56)[0]
               for index in range(len(messages))]
    return count, lengths


def in_child(sock: socket.socket, work: object) -> None:
    pid = os.fork()
    if pid == 0:
        try:
            work()  # type: ignore[operator]
        finally:
            sys.stdout.flush()
            os._exit(0)
    os.waitpid(pid, 0)


def main(directory: str) -> None:
    os.chdir(directory)
    with open("a", "w") as out:
        out.write("alpha\nbeta\n")
    parent, child = socket.socketpair()

    reader = os.open("a", os.O_RDONLY)
    os.read(reader, 6)

    def receive_reader() -> None:
        _, fds, _, _ = socket.recv_fds(child, 16, 4)
        fd = fds[0]
        print("child reads:", os.read(fd, 100), "size", os.fstat(fd).st_size, flush=True)
        os.close(fd)

    socket.send_fds(parent, [b"x"], [reader])
    in_child(child, receive_reader)
    print("parent offset after:", os.lseek(reader, 0, os.SEEK_CUR) in (6, 11))
    os.close(reader)

    writer = os.open("b", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(writer, b"parent\n")

    def receive_writer() -> None:
        _, fds, _, _ = socket.recv_fds(child, 16, 4)
        os.write(fds[0], b"child wrote\n")
        os.close(fds[0])

    socket.send_fds(parent, [b"x"], [writer])
    in_child(child, receive_writer)
    os.close(writer)
    with open("b", "rb") as back:
        print("b holds:", back.read())

    r, w = os.pipe()
    both = os.open("a", os.O_RDONLY)

    def receive_two() -> None:
        _, fds, _, _ = socket.recv_fds(child, 16, 4)
        print("two fds:", len(fds), os.read(fds[0], 5), os.read(fds[1], 5), flush=True)

    os.write(w, b"piped")
    socket.send_fds(parent, [b"xy"], [r, both])
    in_child(child, receive_two)
    os.close(both)

    big = os.open("a", os.O_RDONLY)
    payload = b"z" * 600000
    pid = os.fork()
    if pid == 0:
        first, fds, _, _ = socket.recv_fds(child, 65536, 4)
        total = len(first)
        while total < len(payload):
            total += len(child.recv(65536))
        print("big message:", total, "fd reads", os.read(fds[0], 5), flush=True)
        os._exit(0)
    sent = socket.send_fds(parent, [payload], [big])
    os.waitpid(pid, 0)
    print("big send returned", sent)
    os.close(big)

    several = os.open("a", os.O_RDONLY)

    def receive_several() -> None:
        _, fds, _, _ = socket.recv_fds(child, 16, 4)
        print("sendmmsg first:", os.read(fds[0], 5), "then", child.recv(16), flush=True)

    print("sendmmsg sent", sendmmsg(parent.fileno(), [(b"one", several), (b"second", None)]),
          flush=True)
    in_child(child, receive_several)
    os.close(several)

    sync_r, sync_w = os.pipe()
    done_r, done_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        fd = os.open("a", os.O_RDONLY)
        os.write(sync_w, str(fd).encode())
        os.read(done_r, 1)
        os._exit(0)
    number = int(os.read(sync_r, 16))
    pidfd = os.pidfd_open(pid)
    got = libc.syscall(438, pidfd, number, 0)
    if got < 0:
        print("pidfd_getfd errno", ctypes.get_errno())
    else:
        print("pidfd_getfd reads:", os.read(got, 100), "cloexec", not os.get_inheritable(got))
        os.close(got)
    os.write(done_w, b"x")
    os.waitpid(pid, 0)


if __name__ == "__main__":
    main(sys.argv[1])
