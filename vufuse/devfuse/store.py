"""The page-cache notifications STORE and RETRIEVE (Linux fs/fuse/dev.c fuse_notify_store,
fuse_notify_retrieve, fuse_retrieve).

STORE writes the daemon's data into the page cache of a cached inode, growing i_size if it
reaches beyond; a page becomes cached when the data covers it from its start to its end or to
the new end of file (zero-filled), and an already cached page is updated in place.  RETRIEVE
asks for cached data: we answer with a NOTIFY_REPLY carrying the cached pages from the offset
on, up to max_write bytes and i_size, stopping at the first page not cached.  Both are ignored
for an inode we do not have.  :func:`install` hooks them in front of the superblock's own
notification handling.
"""

from __future__ import annotations

from typing import Any

from vufuse import protocol as p

from .connection import PAGE_SIZE
from .superblock import Superblock


def store(sb: Superblock, arg: p.NotifyStoreOut, data: bytes) -> None:
    """fuse_notify_store: put ``data`` at ``arg.offset`` into the cache of ``arg.nodeid``."""
    inode = sb.inodes.find(arg.nodeid)
    if inode is None or inode.bad:
        return
    data = data[: arg.size]
    end = arg.offset + len(data)
    file_size = inode.size
    if end > file_size:
        file_size = end
        inode.attr = inode.attr._replace(size=end)
        sb.inodes.invalidate_attr(inode)
    position = arg.offset
    while position < end:
        index, in_page = divmod(position, PAGE_SIZE)
        count = min(end - position, PAGE_SIZE - in_page)
        piece = data[position - arg.offset : position - arg.offset + count]
        cached = inode.pages.get(index)
        if cached is not None:
            page = bytearray(cached)
            page[in_page : in_page + count] = piece
            inode.pages[index] = bytes(page)
        elif in_page == 0 and (count == PAGE_SIZE or file_size == end):
            inode.pages[index] = piece.ljust(PAGE_SIZE, b"\0")
        position += count


def retrieve_reply(sb: Superblock, arg: p.NotifyRetrieveOut) -> p.NotifyReplyRequest | None:
    """fuse_retrieve: the NOTIFY_REPLY answering a RETRIEVE (None for an unknown inode)."""
    inode = sb.inodes.find(arg.nodeid)
    if inode is None:
        return None
    file_size = inode.size
    count = min(arg.size, sb.connection.negotiated.max_write)
    if arg.offset > file_size:
        count = 0
    elif arg.offset + count > file_size:
        count = file_size - arg.offset
    pieces: list[bytes] = []
    index, in_page = divmod(arg.offset, PAGE_SIZE)
    while count > 0:
        page = inode.pages.get(index)
        if page is None:
            break
        take = min(count, PAGE_SIZE - in_page)
        pieces.append(page[in_page : in_page + take])
        count -= take
        in_page = 0
        index += 1
    data = b"".join(pieces)
    header = p.InHeader(unique=arg.notify_unique, nodeid=arg.nodeid)
    return p.NotifyReplyRequest(header, p.NotifyRetrieveIn(offset=arg.offset, size=len(data)), data)


def install(sb: Superblock) -> None:
    """Handle STORE and RETRIEVE before the superblock's own notification handler."""
    connection = sb.connection
    handle_rest = connection.on_notification
    after_rest = connection.after_notification
    replies: list[p.NotifyReplyRequest] = []

    def on_notification(notification: Any) -> None:
        if isinstance(notification, p.StoreNotification):
            store(sb, notification.arg, notification.data)
        elif isinstance(notification, p.RetrieveNotification):
            reply = retrieve_reply(sb, notification.arg)
            if reply is not None:
                replies.append(reply)
        elif handle_rest is not None:
            handle_rest(notification)

    async def after_notification() -> None:
        while replies:
            await connection.send_notify_reply(replies.pop(0))
        if after_rest is not None:
            await after_rest()

    connection.on_notification = on_notification
    connection.after_notification = after_notification
