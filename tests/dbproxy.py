"""A TCP proxy between Herald and its database that injects faults into chosen commands, for the database-fault
tests: the server's real wire protocol passes through, and a rule picks the OP_MSG commands to hurt.

- `fail`: the command never reaches the server; the client gets an error reply, as from a busy SQLite database
  ("database is locked") whose command did nothing.
- `lose_reply`: the server runs the command, but its reply is lost and the client's connection is reset: the
  client cannot tell whether the command ran (it did).
- `hold_reply`: the server runs the command, and its reply never comes: the client waits until its own timeout.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import bson

OP_MSG = 2013
HEADER = struct.Struct("<iiii")  # messageLength, requestID, responseTo, opCode
BUSY = {"ok": 0.0, "errmsg": "database is locked (5) (SQLITE_BUSY)", "code": 1, "codeName": "InternalError"}

Fault = Literal["fail", "lose_reply", "hold_reply"]
Match = Callable[[dict[str, Any]], bool]


@dataclass
class Rule:
    fault: Fault
    match: Match
    times: int
    fired: int = 0


def command_of(message: bytes) -> dict[str, Any] | None:
    """The command of an OP_MSG, with its document sequences (the statements of a bulk write) under their
    names, or None for any other message."""
    total, _, _, op_code = HEADER.unpack_from(message)
    if op_code != OP_MSG:
        return None
    command: dict[str, Any] = {}
    offset = HEADER.size + 4  # after the flag bits
    while offset < total:
        kind = message[offset]
        (length,) = struct.unpack_from("<i", message, offset + 1)
        if kind == 0:
            command.update(bson.decode(message[offset + 1 : offset + 1 + length]))
        else:  # a document sequence: its size, a name, then documents
            end = offset + 1 + length
            name_end = message.index(b"\x00", offset + 5)
            name, cursor, documents = message[offset + 5 : name_end].decode(), name_end + 1, []
            while cursor < end:
                (size,) = struct.unpack_from("<i", message, cursor)
                documents.append(bson.decode(message[cursor : cursor + size]))
                cursor += size
            command[name] = documents
        offset += 1 + length
    return command


def reply_to(request_id: int, document: dict[str, Any]) -> bytes:
    body = struct.pack("<i", 0) + b"\x00" + bson.encode(document)
    return HEADER.pack(HEADER.size + len(body), 0, request_id, OP_MSG) + body


async def read_message(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(HEADER.size)
    (length,) = struct.unpack_from("<i", header)
    return header + await reader.readexactly(length - HEADER.size)


@dataclass
class DatabaseProxy:
    """Listens on loopback and forwards to `upstream` (host, port)."""

    upstream: tuple[str, int]
    rules: list[Rule] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> DatabaseProxy:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    def inject(self, fault: Fault, match: Match, times: int = 1) -> Rule:
        """Hurt the next `times` commands for which `match(command)` holds; returns the rule, to see it fired."""
        rule = Rule(fault, match, times)
        self.rules.append(rule)
        return rule

    def _fault_for(self, command: dict[str, Any]) -> Fault | None:
        for rule in self.rules:
            if rule.fired < rule.times and rule.match(command):
                rule.fired += 1
                return rule.fault
        return None

    async def _connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await asyncio.open_connection(*self.upstream)
        lost: set[int] = set()  # request ids whose reply is to be lost
        held: set[int] = set()  # request ids whose reply is never to come
        replies = asyncio.create_task(self._replies(server_reader, client_writer, lost, held))
        try:
            while True:
                message = await read_message(client_reader)
                command = command_of(message)
                fault = self._fault_for(command) if command is not None else None
                request_id = HEADER.unpack_from(message)[1]
                if fault == "fail":
                    client_writer.write(reply_to(request_id, BUSY))
                    continue
                if fault == "lose_reply":
                    lost.add(request_id)
                if fault == "hold_reply":
                    held.add(request_id)
                server_writer.write(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            replies.cancel()
            for writer in (server_writer, client_writer):
                writer.transport.abort()

    @staticmethod
    async def _replies(
        server_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter, lost: set[int], held: set[int]
    ) -> None:
        try:
            while True:
                message = await read_message(server_reader)
                response_to = HEADER.unpack_from(message)[2]
                if response_to in lost:
                    client_writer.transport.abort()  # the client sees its connection reset, the command ran
                    return
                if response_to not in held:
                    client_writer.write(message)
        except (asyncio.IncompleteReadError, ConnectionError):
            client_writer.transport.abort()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
