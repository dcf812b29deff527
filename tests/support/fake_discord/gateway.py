"""The gateway websocket: HELLO, heartbeats, IDENTIFY -> READY + GUILD_CREATE, RESUME with replay, sharding.

Each session keeps every dispatch it was given (with its sequence number), so a client that comes back
with RESUME gets what it missed while disconnected; a writer task per connection sends them in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from .world import World

log = logging.getLogger(__name__)

DISPATCH, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, REQUEST_MEMBERS = 0, 1, 2, 6, 7, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11

GUILDS, GUILD_MEMBERS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1, 1 << 1, 1 << 9, 1 << 12, 1 << 15
_GUILD_EVENTS = ("GUILD_", "CHANNEL_")
_MEMBER_EVENTS = ("GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE")
_MESSAGE_EVENTS = ("MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE")
_CONTENT_KEYS = {"content": "", "embeds": [], "attachments": [], "components": []}


class _Encoder:
    """Turns a JSON text into a frame for the connection's ``compress`` mode (persistent stream context)."""

    def __init__(self, mode: str | None) -> None:
        self._zlib = zlib.compressobj() if mode == "zlib-stream" else None
        self._zstd: Any = None
        if mode == "zstd-stream":
            import zstandard  # only when a client asks for it, as discord.py does when zstandard is installed

            self._zstd = zstandard.ZstdCompressor().compressobj()
            self._zstd_flush = zstandard.COMPRESSOBJ_FLUSH_BLOCK

    def encode(self, text: str) -> str | bytes:
        raw = text.encode()
        if self._zlib is not None:
            return self._zlib.compress(raw) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        if self._zstd is not None:
            return bytes(self._zstd.compress(raw) + self._zstd.flush(self._zstd_flush))
        return text


@dataclass(eq=False)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    encoder: _Encoder
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    session: _Session | None = None
    writer: asyncio.Task[None] | None = None

    async def send(self, payload: dict[str, Any]) -> None:
        async with self.lock:  # compress and send as one step: the compression stream must stay in order
            frame = self.encoder.encode(json.dumps(payload))
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                await self.ws.send_str(frame)


@dataclass(eq=False)
class _Session:
    id: str
    shard: tuple[int, int]
    intents: int
    events: list[dict[str, Any]] = field(default_factory=list)  # events[i] has sequence i + 1
    sent: int = 0  # events written on the current connection
    initial: int = 0  # READY and the GUILD_CREATEs
    ready: bool = False
    conn: _Connection | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, event: str, data: dict[str, Any]) -> None:
        self.events.append({"op": DISPATCH, "t": event, "s": len(self.events) + 1, "d": data})
        self.wake.set()


class Gateway:
    """The websocket endpoint plus the sessions behind it. ``dispatch`` routes an event to its shard."""

    def __init__(
        self, world: World, *, token: str, heartbeat_interval: float, on_sent: Callable[[dict[str, Any]], None]
    ) -> None:
        self.world = world
        self.token = token
        self.heartbeat_interval = heartbeat_interval
        self.url = ""  # ws://host:port/gateway, set when the server starts
        self.sessions: dict[str, _Session] = {}
        self.identifies = 0
        self.resumes = 0
        self.compressions: list[str | None] = []  # the ``compress`` mode of each connection, in order
        self._on_sent = on_sent
        self._connections: set[_Connection] = set()

    # -- routing ------------------------------------------------------------------------------------------

    def dispatch(self, event: str, data: dict[str, Any], guild_id: int | None) -> int:
        """Queue ``event`` for the sessions that should see it (its guild's shard, shard 0 for the rest).

        Returns how many sessions took it.
        """
        taken = 0
        for session in self.sessions.values():
            shard_id, count = session.shard
            home = 0 if guild_id is None else (guild_id >> 22) % count
            if home == shard_id and _wants(session.intents, event, guild_id):
                session.push(event, _redact(session.intents, event, data, guild_id, self.world.bot.id))
                taken += 1
        return taken

    def ready_shards(self) -> set[tuple[int, int]]:
        """The shards whose READY and GUILD_CREATEs have gone out."""
        return {s.shard for s in self.sessions.values() if s.ready}

    async def drop(self, *, code: int | None = 4000, shard: int | None = None) -> None:
        """Cut live connections (``code`` None: abort the TCP connection, like a 1006). Sessions stay resumable."""
        for session in list(self.sessions.values()):
            conn = session.conn
            if conn is None or (shard is not None and session.shard[0] != shard):
                continue
            session.conn = None
            if code is None:
                if conn.request.transport is not None:
                    conn.request.transport.abort()
            else:
                await conn.ws.close(code=code, message=b"fake Discord: dropped on purpose")
        self.world.changed()

    async def reconnect(self) -> None:
        """Send op 7 RECONNECT on every live connection: clients close and RESUME."""
        await self._broadcast_op(RECONNECT, None)

    async def invalidate(self, *, resumable: bool) -> None:
        """Send op 9 INVALID_SESSION; unless ``resumable`` the sessions are forgotten, so clients IDENTIFY."""
        await self._broadcast_op(INVALID_SESSION, resumable)
        if not resumable:
            self.sessions.clear()

    async def _broadcast_op(self, op: int, data: Any) -> None:
        for conn in list(self._connections):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await conn.send({"op": op, "d": data, "s": None, "t": None})

    async def close(self) -> None:
        """Close every connection (server shutdown)."""
        for conn in list(self._connections):
            await conn.ws.close(code=1001, message=b"fake Discord: shutting down")

    # -- the websocket ------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """``GET /gateway`` upgraded to a websocket."""
        mode = request.query.get("compress")
        if request.query.get("encoding", "json") != "json" or mode not in (None, "zlib-stream", "zstd-stream"):
            log.error("fake gateway: unsupported encoding/compress in %s", request.query_string)
            return web.Response(status=400, text="fake Discord supports encoding=json, zlib-stream, zstd-stream")
        self.compressions.append(mode)
        ws = web.WebSocketResponse(max_msg_size=0, autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws=ws, request=request, encoder=_Encoder(mode))
        self._connections.add(conn)
        try:
            await conn.send(
                {"op": HELLO, "d": {"heartbeat_interval": int(self.heartbeat_interval * 1000)}, "s": None, "t": None}
            )
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._receive(conn, json.loads(msg.data))
                elif msg.type is WSMsgType.ERROR:
                    break
        except (ConnectionError, RuntimeError) as exc:
            log.info("fake gateway: connection ended: %r", exc)
        finally:
            self._connections.discard(conn)
            if conn.session is not None and conn.session.conn is conn:
                conn.session.conn = None
            if conn.writer is not None:
                conn.writer.cancel()
            self.world.changed()
        return ws

    async def _receive(self, conn: _Connection, msg: dict[str, Any]) -> None:
        op, data = msg.get("op"), msg.get("d") or {}
        if op == HEARTBEAT:
            await conn.send({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
        elif op == IDENTIFY:
            await self._identify(conn, data)
        elif op == RESUME:
            await self._resume(conn, data)
        elif op == REQUEST_MEMBERS and conn.session is not None:
            self._members_chunk(conn.session, data)
        else:
            log.debug("fake gateway: ignoring op %s", op)

    async def _identify(self, conn: _Connection, data: dict[str, Any]) -> None:
        if conn.session is not None:
            await conn.ws.close(code=4005, message=b"Already authenticated.")
            return
        if data.get("token") != self.token:
            await conn.ws.close(code=4004, message=b"Authentication failed.")
            return
        shard_id, count = data.get("shard") or (0, 1)
        if not 0 <= shard_id < count:
            await conn.ws.close(code=4010, message=b"Invalid shard.")
            return
        for old in [s for s in self.sessions.values() if s.shard == (shard_id, count)]:
            del self.sessions[old.id]
        session = _Session(id=secrets.token_hex(16), shard=(shard_id, count), intents=int(data.get("intents", 0)))
        self.sessions[session.id] = session
        self.identifies += 1
        guilds = [g for g in self.world.guilds.values() if (g.id >> 22) % count == shard_id]
        session.push("READY", self._ready_payload(session, [g.id for g in guilds]))
        for guild in guilds:
            session.push("GUILD_CREATE", guild.payload())
        session.initial = len(session.events)
        await self._attach(conn, session, sent=0)

    async def _resume(self, conn: _Connection, data: dict[str, Any]) -> None:
        session = self.sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            await conn.send({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        self.resumes += 1
        seq = int(data.get("seq") or 0)
        session.push("RESUMED", {})
        await self._attach(conn, session, sent=min(seq, len(session.events)))

    async def _attach(self, conn: _Connection, session: _Session, *, sent: int) -> None:
        old, session.conn = session.conn, conn
        if old is not None and old is not conn:
            await old.ws.close(code=4000, message=b"Session taken over.")
        session.sent = sent
        conn.session = session
        conn.writer = asyncio.create_task(self._write(conn, session), name=f"fake-gateway-writer-{session.id}")

    async def _write(self, conn: _Connection, session: _Session) -> None:
        try:
            while session.conn is conn:
                session.wake.clear()
                while session.conn is conn and session.sent < len(session.events):
                    payload = session.events[session.sent]
                    session.sent += 1
                    await conn.send(payload)
                    self._on_sent(payload)
                if not session.ready and session.sent >= session.initial:
                    session.ready = True
                    self.world.changed()
                await session.wake.wait()
        except (ConnectionError, RuntimeError) as exc:
            log.info("fake gateway: writer for session %s stopped: %r", session.id, exc)

    def _ready_payload(self, session: _Session, guild_ids: list[int]) -> dict[str, Any]:
        user = self.world.bot.payload() | {"verified": True, "mfa_enabled": False, "flags": 0, "email": None}
        return {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(g), "unavailable": True} for g in guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.url,
            "shard": list(session.shard),
            "application": {"id": str(self.world.app_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "geo_ordered_rtc_regions": [],
            "user_settings": {},
            "auth": {},
            "_trace": ["fake-discord"],
        }

    def _members_chunk(self, session: _Session, data: dict[str, Any]) -> None:
        guild = self.world.guilds.get(int(data.get("guild_id", 0)))
        members = list(guild.members.values()) if guild else []
        query = data.get("query")
        if query:
            members = [m for m in members if m.user.name.lower().startswith(query.lower())]
        wanted = {int(u) for u in data.get("user_ids") or []}
        if wanted:
            members = [m for m in members if m.user.id in wanted]
        limit = int(data.get("limit") or 0)
        chunk: dict[str, Any] = {
            "guild_id": str(data.get("guild_id")),
            "members": [m.payload() for m in (members[:limit] if limit else members)],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": sorted(wanted - {m.user.id for m in members}),
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        session.push("GUILD_MEMBERS_CHUNK", chunk)


def _wants(intents: int, event: str, guild_id: int | None) -> bool:
    """Whether a session identified with ``intents`` receives ``event``."""
    if event in _MESSAGE_EVENTS:
        return bool(intents & (GUILD_MESSAGES if guild_id is not None else DIRECT_MESSAGES))
    if event in _MEMBER_EVENTS:
        return bool(intents & GUILD_MEMBERS)
    if event.startswith(_GUILD_EVENTS):
        return bool(intents & GUILDS)
    return True


def _redact(intents: int, event: str, data: dict[str, Any], guild_id: int | None, bot_id: int) -> dict[str, Any]:
    """Strip message content from guild messages of others when the MESSAGE_CONTENT intent is missing."""
    if intents & MESSAGE_CONTENT or event not in ("MESSAGE_CREATE", "MESSAGE_UPDATE") or guild_id is None:
        return data
    if int(data.get("author", {}).get("id", 0)) == bot_id or f"<@{bot_id}>" in data.get("content", ""):
        return data
    return data | _CONTENT_KEYS
