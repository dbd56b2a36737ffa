"""An import's file, streamed to disk as it arrives: memory stays flat whatever its size."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path

from herald.errors import TooLarge
from herald.imports.rows import Format, csv_columns


@dataclass(frozen=True)
class Spooled:
    path: Path
    kind: Format
    columns: list[str] | None  # a CSV's, from its header line
    lines: int  # data lines, to tell progress by

    @property
    def first_line(self) -> int:
        """The number of the first data line: a CSV's header is line 1."""
        return 2 if self.kind is Format.CSV else 1


async def spool(chunks: AsyncIterable[bytes], kind: Format, limit_bytes: int) -> Spooled:
    """Write the chunks to a temporary file; a CSV's header must name the client's fields. The caller removes
    the file once done with it; on an error it is removed here."""
    with tempfile.NamedTemporaryFile("wb", prefix="herald-import-", delete=False) as out:
        path = Path(out.name)
    try:
        size, newlines, last = 0, 0, b"\n"
        # Local file operations, a chunk or a line at a time, take microseconds (the page cache): a thread hop for
        # each would cost more than it saves.
        with path.open("wb") as out:  # noqa: ASYNC230
            async for chunk in chunks:
                size += len(chunk)
                if size > limit_bytes:
                    raise TooLarge(f"an import is at most {limit_bytes // 2**20} MB")
                out.write(chunk)
                newlines += chunk.count(b"\n")
                last = chunk[-1:] or last
        lines = newlines + (last != b"\n")
        columns = None
        if kind is Format.CSV:
            with path.open("rb") as data:  # noqa: ASYNC230
                columns = csv_columns(data.readline())
            lines -= 1
        return Spooled(path, kind, columns, max(lines, 0))
    except BaseException:
        path.unlink(missing_ok=True)  # noqa: ASYNC240
        raise
