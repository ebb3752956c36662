"""Data offsets for a custom-format archive that ``pg_dump`` wrote to a pipe, found while it is spooled.

``pg_dump -Fc`` writes its TOC first and the data blocks after it. Writing to a file, it goes back
at the end and rewrites the TOC with each data block's file offset; writing to a pipe (our backups:
``pg_dump -Fc -Z0``, compressed outside pg_dump and streamed to S3) it cannot, and every data entry
keeps "offset not set". Without offsets ``pg_restore --jobs`` has no size estimates, so it cannot
start the largest tables and their indexes first, and each worker scans the file for its blocks.

:class:`DataOffsetFinder` reads the archive as it is spooled and finds every data block;
:meth:`DataOffsetFinder.patch` gives the bytes that make the spooled file what
``pg_dump -Fc -Z0 -f file`` would have written (apart from the header's timestamp). The layout is
PostgreSQL's (src/bin/pg_dump: pg_backup_archiver.c ``ReadHead``/``ReadToc``/``WriteToc``/
``WriteInt``/``WriteOffset``, pg_backup_custom.c ``_WriteExtraToc``/``_StartData``/``_StartLOs``/
``_EndData``/``_CloseArchive``) for archive versions 1.12 to 1.16, written by pg_dump 9.0 to 18:

- a header, then the TOC: an entry count and per entry its fields, the last of them the custom
  format's offset field (a flag byte, then ``offSize`` bytes, little-endian);
- then one block per entry that had a data dumper, in TOC order: a block type byte (1 table data,
  3 large objects), the entry's dump id as an int (a sign byte, then ``intSize`` bytes,
  little-endian), chunks (an int length, then that many bytes), and a zero-length int at the end.
  A large-object block holds per object its OID as an int followed by such chunks, and ends with
  an OID of zero.

Table data is COPY (or INSERT) text, which never holds a NUL byte, and every chunk holds at least
one byte: so after a table-data block's header the first run of ``intSize + 1`` zero bytes is its
end marker, found by ``bytes.find`` at C speed however many chunks there are (pg_dump writes one
per row). Large-object data is arbitrary bytes: those blocks are walked chunk by chunk. Every block
must start exactly where the one before it ended, with the header the TOC says comes next, and the
archive must end exactly after the last one. Anything else (a version or compression not known
here, unexpected bytes, a block missing) and nothing is written: ``pg_restore`` then looks for the
blocks itself, as it did before.
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass

MAGIC = b"PGDMP"
ARCHIVE_CUSTOM = 1  # ArchiveFormat archCustom
K_OFFSET_POS_NOT_SET = 1
K_OFFSET_POS_SET = 2
K_OFFSET_NO_DATA = 3
BLK_DATA = 1
BLK_BLOBS = 3
# Archive versions 1.12 (pg_dump 9.0) to 1.16 (pg_dump 17 and 18): the TOC layouts checked here.
MINOR_VERSIONS = range(12, 17)
# pg_compress_algorithm, stored in the header from archive version 1.15 on
COMPRESSION_NAMES = {0: "none", 1: "gzip", 2: "lz4", 3: "zstd"}
BLOCK_TYPES = {"TABLE DATA": BLK_DATA, "BLOBS": BLK_BLOBS}
# The header and TOC are held in memory until complete (a 1,000-table schema's TOC is a few MB).
TOC_LIMIT = 64 * 1024 * 1024


class NotPatchable(Exception):
    """Why no offsets are written into an archive: it is restored as it came."""


class _NeedMore(Exception):
    """The bytes so far end inside the header or the TOC."""


@dataclass(frozen=True)
class TocEntry:
    """What the offset search needs of one TOC entry."""

    dump_id: int
    desc: str
    tag: str
    had_dumper: bool
    offset_flag: int
    offset: int
    offset_field: int  # file position of the offset's flag byte


@dataclass(frozen=True)
class ArchiveHead:
    """A custom-format archive's header and TOC."""

    version: tuple[int, int, int]
    int_size: int
    off_size: int
    compression: str
    created_span: tuple[int, int]  # file positions of the creation time (it differs between two dumps)
    toc_end: int  # where the first data block starts
    entries: tuple[TocEntry, ...]

    @property
    def data_entries(self) -> tuple[TocEntry, ...]:
        return tuple(e for e in self.entries if e.had_dumper)


class _Reader:
    """Reads pg_dump's archive primitives from ``data``; raises :class:`_NeedMore` at its end."""

    def __init__(self, data: bytes | bytearray) -> None:
        self._data = data
        self.pos = 0
        self.int_size = 4

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self._data):
            raise _NeedMore
        chunk = bytes(self._data[self.pos : end])
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def int(self) -> int:
        at = self.pos
        sign = self.byte()
        if sign not in (0, 1):
            raise NotPatchable(f"byte {at} is {sign}, not the sign byte of an integer (0 or 1)")
        value = int.from_bytes(self.take(self.int_size), "little")
        return -value if sign else value

    def string(self) -> bytes | None:
        at = self.pos
        length = self.int()
        if length == -1:
            return None
        if length < 0:
            raise NotPatchable(f"string at byte {at} has length {length}")
        return self.take(length)

    def text(self) -> str:
        value = self.string()
        return "" if value is None else value.decode("utf-8", errors="replace")


def _read_header(r: _Reader) -> tuple[tuple[int, int, int], int, str, tuple[int, int]]:
    """Version, offset size, compression and creation-time span; refuses what is not handled here."""
    if r.take(5) != MAGIC:
        raise NotPatchable("no PGDMP signature: not a custom-format archive")
    version = (r.byte(), r.byte(), r.byte())
    if version[0] != 1 or version[1] not in MINOR_VERSIONS:
        raise NotPatchable(
            f"archive version {version[0]}.{version[1]}.{version[2]}: offsets are written only into "
            f"versions 1.{MINOR_VERSIONS[0]} to 1.{MINOR_VERSIONS[-1]}"
        )
    r.int_size = r.byte()
    off_size = r.byte()
    if not 4 <= r.int_size <= 8 or not 4 <= off_size <= 8:
        raise NotPatchable(f"integer size {r.int_size}, offset size {off_size}: expected 4 to 8 bytes")
    if (fmt := r.byte()) != ARCHIVE_CUSTOM:
        raise NotPatchable(f"archive format {fmt}: expected {ARCHIVE_CUSTOM} (custom)")
    if version[1] >= 15:
        code = r.byte()
        compression = COMPRESSION_NAMES.get(code, f"unknown ({code})")
    else:
        compression = "none" if r.int() == 0 else "gzip"
    if compression != "none":
        raise NotPatchable(
            f"the data is compressed inside the archive ({compression}): its blocks are not searched"
        )
    created_from = r.pos
    for _ in range(7):  # tm_sec, tm_min, tm_hour, tm_mday, tm_mon, tm_year, tm_isdst
        r.int()
    created_span = (created_from, r.pos)
    r.string()  # database name
    r.string()  # server version
    r.string()  # pg_dump version
    return version, off_size, compression, created_span


def _read_entry(r: _Reader, minor: int, off_size: int) -> TocEntry:
    """One TOC entry (ReadToc, then the custom format's _ReadExtraToc)."""
    at = r.pos
    dump_id = r.int()
    had_dumper = r.int()
    if dump_id <= 0 or had_dumper not in (0, 1):
        raise NotPatchable(f"TOC entry at byte {at}: dump id {dump_id}, data dumper flag {had_dumper}")
    r.string()  # catalog table OID (1.8+: always here)
    r.string()  # OID
    tag = r.text()
    desc = r.text()
    r.int()  # section (1.11+)
    r.string()  # definition
    r.string()  # drop statement
    r.string()  # copy statement
    r.string()  # namespace
    r.string()  # tablespace (1.10+)
    if minor >= 14:
        r.string()  # table access method
    if minor >= 16:
        r.int()  # relkind
    r.string()  # owner
    r.string()  # "with OIDs" (1.9+)
    while r.string() is not None:  # dependencies, ending with a NULL string
        pass
    offset_field = r.pos
    flag = r.byte()
    offset = int.from_bytes(r.take(off_size), "little")
    return TocEntry(dump_id, desc, tag, bool(had_dumper), flag, offset, offset_field)


def _parse_head(data: bytes | bytearray) -> ArchiveHead:
    r = _Reader(data)
    version, off_size, compression, created_span = _read_header(r)
    count = r.int()
    if count < 0:
        raise NotPatchable(f"TOC entry count {count}")
    entries = tuple(_read_entry(r, version[1], off_size) for _ in range(count))
    return ArchiveHead(version, r.int_size, off_size, compression, created_span, r.pos, entries)


def read_head(data: bytes | bytearray) -> ArchiveHead:
    """The header and TOC at the start of ``data``; :class:`NotPatchable` if they are not all there."""
    try:
        return _parse_head(data)
    except _NeedMore:
        raise NotPatchable(f"the archive ends inside its header or TOC ({len(data)} bytes)") from None


def _check_data_entries(head: ArchiveHead) -> None:
    """Every data entry without an offset yet, every other one marked as having no data."""
    data = head.data_entries
    if data and all(e.offset_flag == K_OFFSET_POS_SET for e in data):
        raise NotPatchable("the archive already has its data offsets")
    for e in head.entries:
        expected = K_OFFSET_POS_NOT_SET if e.had_dumper else K_OFFSET_NO_DATA
        if e.offset_flag != expected or e.offset != 0:
            raise NotPatchable(
                f"TOC entry {e.dump_id} ({e.desc} {e.tag}) has offset flag {e.offset_flag} at "
                f"{e.offset}: expected {expected} at 0"
            )
        if e.had_dumper and e.desc not in BLOCK_TYPES:
            raise NotPatchable(f"TOC entry {e.dump_id} has data of a kind not handled here: {e.desc}")


@dataclass(frozen=True)
class OffsetPatch:
    """Bytes to write into the archive's TOC: ``(file position, bytes)``, one per data block."""

    writes: tuple[tuple[int, bytes], ...]

    @property
    def blocks(self) -> int:
        return len(self.writes)

    def apply(self, fd: int) -> None:
        """Write the offsets into the archive open as ``fd`` (its file position is left as it was).

        Each offset is written before its flag, so an error part way leaves every entry either as
        it was or complete: pg_restore reads an offset only when its flag says it is set.
        """
        for position, data in self.writes:
            _pwrite_all(fd, data[1:], position + 1)
            _pwrite_all(fd, data[:1], position)


def _pwrite_all(fd: int, data: bytes, position: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], position + done)


class _Step(enum.Enum):
    TOC = "header and TOC"
    HEADER = "a data block's header"
    TABLE_DATA = "a table-data block"
    LO_OID = "a large object's OID"
    LO_CHUNK_LENGTH = "a large-object chunk's length"
    LO_CHUNK = "a large-object chunk"
    END = "the end of the archive"
    STOPPED = "nothing (stopped)"


class DataOffsetFinder:
    """Fed the archive's bytes in order, finds where each data block starts.

    :meth:`feed` never raises: the first thing that does not fit the expected layout stops the
    search, and :meth:`patch` then raises :class:`NotPatchable` saying why.
    """

    def __init__(self) -> None:
        self._toc = bytearray()
        self._parse_at = 1
        self._head: ArchiveHead | None = None
        self._blocks: tuple[TocEntry, ...] = ()
        self._found: list[int] = []
        self._failure: str | None = None
        self._step = _Step.TOC
        self._pos = 0  # file position of the next byte fed
        self._field = bytearray()  # a fixed-size field read so far (block header, int)
        self._field_at = 0
        self._zeros = 0  # table data: zero bytes at the end of what was searched (fewer than a run)
        self._chunk_left = 0

    def feed(self, block: bytes) -> None:
        """The next bytes of the archive."""
        if self._step is _Step.STOPPED:
            return
        try:
            if self._step is _Step.TOC:
                self._feed_toc(block)
            else:
                self._scan(block)
                self._pos += len(block)
        except NotPatchable as why:
            self._stop(str(why))
        except Exception as err:  # an offset search must never be what stops a restore
            self._stop(f"unexpected {type(err).__name__} reading the archive: {err}")

    def patch(self) -> OffsetPatch:
        """What to write into the archive's TOC, once all of it was fed."""
        if self._step is _Step.TOC:  # all of a short archive may be in the buffer, not parsed yet
            self._parse_at = 0
            self.feed(b"")
        if self._failure is not None:
            raise NotPatchable(self._failure)
        if self._step is _Step.TOC:
            raise NotPatchable(f"the archive ends inside its header or TOC ({len(self._toc)} bytes)")
        if self._step is not _Step.END:
            entry = self._blocks[len(self._found) - (self._step is not _Step.HEADER)]
            raise NotPatchable(
                f"the archive ends at byte {self._pos}, in {self._step.value} "
                f"(data of TOC entry {entry.dump_id}, {entry.desc} {entry.tag})"
            )
        assert self._head is not None
        if any(b <= a for a, b in zip(self._found, self._found[1:], strict=False)):
            raise NotPatchable("data offsets found are not ascending")
        writes = tuple(
            (e.offset_field, bytes([K_OFFSET_POS_SET]) + at.to_bytes(self._head.off_size, "little"))
            for e, at in zip(self._blocks, self._found, strict=True)
        )
        return OffsetPatch(writes)

    def _stop(self, reason: str) -> None:
        self._failure = reason
        self._step = _Step.STOPPED
        self._toc = bytearray()

    def _feed_toc(self, block: bytes) -> None:
        self._toc += block
        if len(self._toc) < self._parse_at and len(self._toc) <= TOC_LIMIT:
            return
        try:
            head = _parse_head(self._toc)
        except _NeedMore:
            if len(self._toc) > TOC_LIMIT:
                raise NotPatchable(f"header and TOC longer than {TOC_LIMIT:,} bytes") from None
            self._parse_at = 2 * len(self._toc)  # parse again once twice as much has come
            return
        _check_data_entries(head)
        self._head, self._blocks = head, head.data_entries
        rest = bytes(self._toc[head.toc_end :])
        self._toc = bytearray()
        self._pos = head.toc_end
        self._expect_block(head.toc_end)
        self._scan(rest)
        self._pos += len(rest)

    def _expect_block(self, position: int) -> None:
        """The next data block starts at ``position``, or the archive ends there after the last one."""
        if len(self._found) == len(self._blocks):
            self._step = _Step.END
        else:
            self._step, self._field_at = _Step.HEADER, position
            self._field.clear()

    def _take_field(self, data: bytes, i: int, size: int) -> int:
        """Collect up to ``size`` bytes of a fixed-size field from ``data[i:]``; the new index."""
        n = min(size - len(self._field), len(data) - i)
        self._field += data[i : i + n]
        return i + n

    def _read_int(self, data: bytes, i: int) -> tuple[int, int | None]:
        """An int of the archive at ``data[i:]`` (it may continue in the next bytes fed): (index, value)."""
        if not self._field:
            self._field_at = self._pos + i
        assert self._head is not None
        i = self._take_field(data, i, 1 + self._head.int_size)
        if len(self._field) <= self._head.int_size:
            return i, None
        sign, value = self._field[0], int.from_bytes(self._field[1:], "little")
        self._field.clear()
        if sign not in (0, 1):
            raise NotPatchable(f"byte {self._field_at} is {sign}, not the sign byte of an integer")
        return i, -value if sign else value

    def _scan(self, data: bytes) -> None:
        """Walk ``data`` (starting at file position ``self._pos``) through the data blocks."""
        i = 0
        while i < len(data):
            step = self._step
            if step is _Step.HEADER:
                i = self._check_header(data, i)
            elif step is _Step.TABLE_DATA:
                i = self._find_table_data_end(data, i)
            elif step is _Step.LO_CHUNK:
                taken = min(self._chunk_left, len(data) - i)
                i += taken
                self._chunk_left -= taken
                if self._chunk_left == 0:
                    self._step = _Step.LO_CHUNK_LENGTH
            elif step in (_Step.LO_OID, _Step.LO_CHUNK_LENGTH):
                i = self._walk_large_objects(data, i)
            else:
                raise NotPatchable(
                    f"{len(data) - i} bytes after the last data block, at byte {self._pos + i}"
                )

    def _check_header(self, data: bytes, i: int) -> int:
        assert self._head is not None
        entry = self._blocks[len(self._found)]
        i = self._take_field(data, i, 2 + self._head.int_size)
        if len(self._field) < 2 + self._head.int_size:
            return i
        expected = bytes([BLOCK_TYPES[entry.desc], 0]) + entry.dump_id.to_bytes(self._head.int_size, "little")
        if self._field != expected:
            raise NotPatchable(
                f"byte {self._field_at}: expected the data block of TOC entry {entry.dump_id} "
                f"({entry.desc} {entry.tag}), found {bytes(self._field).hex()}"
            )
        self._found.append(self._field_at)
        self._field.clear()
        self._zeros = 0
        self._step = _Step.TABLE_DATA if entry.desc == "TABLE DATA" else _Step.LO_OID
        return i

    def _find_table_data_end(self, data: bytes, i: int) -> int:
        """Look for the zero-length int that ends a table-data block (no NUL in text, no empty chunk)."""
        assert self._head is not None
        run = self._head.int_size + 1
        lead = len(data[i : i + run]) - len(data[i : i + run].lstrip(b"\0"))
        if self._zeros and self._zeros + min(lead, run) >= run:  # the run began in the bytes before
            marker = self._pos + i - self._zeros
        else:
            found = data.find(b"\0" * run, i)
            if found < 0:
                tail = data[max(i, len(data) - (run - 1)) :]
                trailing = len(tail) - len(tail.rstrip(b"\0"))
                self._zeros = self._zeros + trailing if trailing == len(data) - i else trailing
                self._zeros = min(self._zeros, run - 1)
                return len(data)
            marker = self._pos + found
        self._expect_block(marker + run)
        return marker + run - self._pos

    def _walk_large_objects(self, data: bytes, i: int) -> int:
        i, value = self._read_int(data, i)
        if value is None:
            return i
        if self._step is _Step.LO_OID:
            if value == 0:  # the zero OID that ends the block
                self._expect_block(self._pos + i)
            else:
                self._step = _Step.LO_CHUNK_LENGTH
        elif value < 0:
            raise NotPatchable(f"large-object chunk length {value} at byte {self._field_at}")
        elif value == 0:  # the end of one object's chunks
            self._step = _Step.LO_OID
        else:
            self._chunk_left, self._step = value, _Step.LO_CHUNK
        return i
