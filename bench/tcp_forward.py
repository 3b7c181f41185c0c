"""A small TCP forwarder for `bench/stack.py --netns`: the machine's PostgreSQL and Redis listen on
127.0.0.1 only, which the app hosts' network namespaces cannot reach; this listens on the bridge's
address in the host namespace and passes each connection through, bytes unchanged.

    .venv/bin/python bench/tcp_forward.py [--delay-ms=0.5] 10.231.7.1:5432=127.0.0.1:5432 …

With --delay-ms each chunk waits that long before it is passed on, each way: the network's latency
between the app hosts and the database host where the kernel has no netem to add it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys

DELAY_SECONDS = 0.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            if DELAY_SECONDS:
                await asyncio.sleep(DELAY_SECONDS)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _handler(host: str, port: int):  # type: ignore[no-untyped-def]
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    return handle


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main(pairs: list[str]) -> None:
    servers = []
    for pair in pairs:
        listen, _, target = pair.partition("=")
        (lhost, lport), (thost, tport) = _address(listen), _address(target)
        servers.append(await asyncio.start_server(_handler(thost, tport), lhost, lport))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    if args and args[0].startswith("--delay-ms="):
        DELAY_SECONDS = float(args.pop(0).split("=", 1)[1]) / 1000
    asyncio.run(main(args))
