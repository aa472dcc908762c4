"""Zip archives bent the way zip bombs bend them: shared by the APK tests and
scripts/make_zip_bomb_apks.py, which writes the committed tests/fixtures/zip-bombs/."""

from __future__ import annotations

import struct

__all__ = ["repeat_in_central_directory"]


def repeat_in_central_directory(data: bytes, entry: str, times: int) -> bytes:
    """``data`` whose central directory lists ``entry`` ``times`` times, all at one local header.

    The archive stays as small as it was: only 46-byte directory records are added.
    """
    eocd = data.rindex(b"PK\x05\x06")
    count, size, offset = struct.unpack("<HII", data[eocd + 10 : eocd + 20])
    directory = data[offset : offset + size]
    records, index = [], 0
    while index < len(directory):
        name_len, extra_len, comment_len = struct.unpack("<HHH", directory[index + 28 : index + 34])
        record = directory[index : index + 46 + name_len + extra_len + comment_len]
        records.append(record)
        index += len(record)
    repeated = next(r for r in records if r[46 : 46 + len(entry)] == entry.encode())
    new = b"".join(records) + repeated * (times - 1)
    total = count + times - 1
    end = data[eocd : eocd + 8] + struct.pack("<HHII", total, total, len(new), offset)
    return data[:offset] + new + end + data[eocd + 20 :]
