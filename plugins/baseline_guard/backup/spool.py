"""Spool a dump object to an unnamed local file, verified before anything reads it.

``pg_restore -j`` refuses standard input, so a parallel restore needs the archive as a file. The
object is downloaded, decompressed and written to a temporary file that has no name (opened and
unlinked at once: a crashed worker leaves nothing behind and no other process can open it) while
its SHA-256 and size are checked; a corrupt or replaced object is refused before any restore work.
``pg_restore`` opens the file as ``/dev/fd/N`` (inherited), and so do its parallel workers.

On the way the data blocks of the archive are located (:mod:`baseline_guard.backup.archive_offsets`):
our archives are written by ``pg_dump`` to a pipe, so their TOC has no data offsets. Once the
object is verified, :func:`write_data_offsets` writes them in, and ``pg_restore --jobs`` gets what
a ``pg_dump -f`` file gives it: sizes to start the largest tables first, and seeks to each block.

The file takes the archive's uncompressed size. Before spooling, the free space of the spool
directory is compared with an estimate of that size, and while spooling with what may be written
without leaving less than :data:`KEEP_FREE`; when it does not fit, the caller streams instead.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from os import PathLike
from typing import TYPE_CHECKING, BinaryIO

from baseline_guard.backup.archive_offsets import DataOffsetFinder
from baseline_guard.backup.codec import Codec, HashingReader, decompressing_reader
from baseline_guard.backup.dump import ProgressMeter
from baseline_guard.backup.s3io import MIB

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

READ_CHUNK = 1 * MIB
KEEP_FREE = 1024 * MIB
# Uncompressed archive per stored byte, for the check before spooling (zstd:3 measured 2.9 on the
# realistic benchmark database); an archive that turns out larger stops at the free space anyway.
ZSTD_SIZE_ESTIMATE = 4


class SpoolFull(Exception):
    """The archive does not fit in the spool directory's free space (the caller streams instead)."""


@dataclass(frozen=True)
class SpooledArchive:
    """The archive in its unnamed file (rewound), the object as read, and where its data blocks are."""

    file: BinaryIO
    stored: HashingReader
    offsets: DataOffsetFinder


def supported() -> bool:
    """Whether an unnamed file can be handed to pg_restore by path (``/dev/fd/N`` reopens it: Linux)."""
    return sys.platform.startswith("linux")


def free_bytes(spool_dir: str | PathLike[str]) -> int:
    return shutil.disk_usage(spool_dir).free


def spool_budget(spool_dir: str | PathLike[str], stored_size: int, codec: Codec) -> int:
    """Bytes that may be spooled in ``spool_dir``; raises :class:`SpoolFull` when the estimate does not fit."""
    budget = free_bytes(spool_dir) - KEEP_FREE
    estimate = stored_size * (ZSTD_SIZE_ESTIMATE if codec == "zstd" else 1)
    if estimate > budget:
        raise SpoolFull(
            f"{spool_dir} has {max(budget, 0) // MIB} MiB to spare above {KEEP_FREE // MIB} MiB, the archive "
            f"needs about {estimate // MIB} MiB"
        )
    return budget


@contextlib.contextmanager
def spooled_object(
    client: S3Client,
    bucket: str,
    key: str,
    codec: Codec,
    *,
    size_limit: int | None,
    spool_dir: str | PathLike[str],
    budget: int,
    meter: ProgressMeter,
) -> Iterator[SpooledArchive]:
    """The object's archive in an unnamed file, with the reader that hashed the object as stored.

    The caller checks the digest before using the file. Stops early, without reading the rest, when
    the object grows beyond ``size_limit`` (the caller's check then refuses it) and raises
    :class:`SpoolFull` when the archive would take more than ``budget`` bytes or the disk fills up.
    """
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    stored = HashingReader(body)
    archive = decompressing_reader(stored, codec, f"s3://{bucket}/{key}")
    offsets = DataOffsetFinder()
    with contextlib.closing(body), tempfile.TemporaryFile(dir=spool_dir) as spool:
        with _full_disk_is_spool_full(spool_dir):
            written, too_big = 0, False
            while block := archive.read(READ_CHUNK):
                meter.add(stored.size - meter.bytes_done)
                too_big = size_limit is not None and stored.size > size_limit
                if too_big:
                    break
                written += len(block)
                if written > budget:
                    raise SpoolFull(
                        f"the archive outgrew the {budget // MIB} MiB {spool_dir} can spare after "
                        f"{stored.size // MIB} MiB of the object"
                    )
                spool.write(block)
                offsets.feed(block)
            while not too_big and stored.read(READ_CHUNK):  # bytes after the archive count in the checksum
                too_big = size_limit is not None and stored.size > size_limit
            spool.flush()
        spool.seek(0)
        yield SpooledArchive(spool, stored, offsets)


@contextlib.contextmanager
def _full_disk_is_spool_full(spool_dir: str | PathLike[str]) -> Iterator[None]:
    """A disk that fills up while spooling (something else took the space) is :class:`SpoolFull` too."""
    try:
        yield
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise SpoolFull(f"{spool_dir} filled up while spooling: {err.strerror}") from err
        raise


def write_data_offsets(spooled: SpooledArchive) -> int:
    """Write the data offsets found while spooling into the archive's TOC: the number of blocks.

    Call it only once the object is verified. Raises ``NotPatchable`` (nothing written) when the
    archive's blocks could not all be located with certainty
    (:class:`baseline_guard.backup.archive_offsets.NotPatchable`).
    """
    patch = spooled.offsets.patch()
    patch.apply(spooled.file.fileno())
    return patch.blocks
