"""How a dump object wraps the ``pg_dump -Fc`` archive: as it is, or as one zstd frame of it.

``none`` is the original format: the object is the archive, compressed (or not) by pg_dump itself.
``zstd`` is an archive written by ``pg_dump -Fc -Z0`` and compressed outside pg_dump by the
``zstandard`` library, on worker threads, with a content checksum in the frame. pg_dump's own
compression runs on pg_dump's single thread (measured: the backup's bottleneck); zstd on two
threads beside it is several times faster at a similar ratio, and decompresses at memory speed.

Both directions stream in bounded memory: nothing here holds a whole dump.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import IO, Literal, Protocol

import zstandard

from baseline_guard.errors import ChecksumMismatch, InvalidInput

Codec = Literal["none", "zstd"]
CODECS: tuple[Codec, ...] = ("none", "zstd")
READ_SIZE = 1024 * 1024
DEFAULT_ZSTD_LEVEL = 3
DEFAULT_ZSTD_THREADS = 2
# zstd's default job for level 3 is 8 MiB, and it keeps several in flight (measured: +62 MB RSS on
# a 617 MB archive); 2 MiB jobs kept the ratio within 1% for +20 MB.
ZSTD_JOB_SIZE = 2 * 1024 * 1024


class Readable(Protocol):
    def read(self, size: int = ..., /) -> bytes: ...


class CorruptDump(ChecksumMismatch):
    """The object does not decode as what its record says it is (damaged or replaced)."""


def check_codec(codec: str) -> Codec:
    if codec not in CODECS:
        raise InvalidInput(f"dump codec {codec!r} is not known: expected one of {', '.join(CODECS)}")
    return codec


def zstd_chunks(
    archive: IO[bytes],
    level: int | None = DEFAULT_ZSTD_LEVEL,
    threads: int = DEFAULT_ZSTD_THREADS,
    read_size: int = READ_SIZE,
) -> Iterator[bytes]:
    """Compressed chunks of ``archive`` (read to its end) as one zstd frame with a content checksum.

    With ``threads`` > 0 zstd compresses on its own worker threads (outside the GIL) while this
    thread reads the next input, so pg_dump, compression and upload run side by side.
    """
    level = DEFAULT_ZSTD_LEVEL if level is None else level
    if not 1 <= level <= 22:
        raise InvalidInput(f"zstd level {level}: expected 1-22")
    params = zstandard.ZstdCompressionParameters.from_level(
        level, threads=threads, job_size=ZSTD_JOB_SIZE if threads > 0 else 0, write_checksum=1
    )
    compressor = zstandard.ZstdCompressor(compression_params=params)
    yield from compressor.read_to_iter(archive, read_size=read_size, write_size=read_size)


class HashingReader:
    """Reads ``raw`` on, keeping the SHA-256 and byte count of everything read (the object as stored)."""

    def __init__(self, raw: Readable) -> None:
        self._raw = raw
        self._digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        block = self._raw.read(size)
        self._digest.update(block)
        self.size += len(block)
        return block

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


class _ZstdArchiveReader:
    """The archive inside a zstd object; a damaged frame raises :class:`CorruptDump`, not ZstdError."""

    def __init__(self, raw: Readable, name: str, read_size: int) -> None:
        # zstandard reads from any object with read(); its stub asks for IO[bytes]
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            raw,  # type: ignore[arg-type]
            read_size=read_size,
            closefd=False,
        )
        self._name = name

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._reader.read(size)
        except zstandard.ZstdError as err:
            raise CorruptDump(
                f"{self._name} does not decompress ({err}): damaged or replaced, not restored"
            ) from None


def decompressing_reader(raw: Readable, codec: str, name: str, read_size: int = READ_SIZE) -> Readable:
    """A reader of the ``pg_dump -Fc`` archive held in an object written with ``codec``.

    Reads return at most ``size`` bytes, however well the data compressed, so memory stays bounded.

    :param name: what the object is called in errors (its ``s3://`` address)
    """
    if check_codec(codec) == "none":
        return raw
    return _ZstdArchiveReader(raw, name, read_size)
