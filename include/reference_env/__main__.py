"""Run the reference environment: API + gateway (two uvicorn servers, one event loop) + sandbox processes.

    REFENV_TOKEN=... python -m reference_env --state-dir DIR --api-port P --gateway-port G

Runs until SIGTERM/SIGINT, then stops every instance process and exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvicorn

from reference_env.api import create_app
from reference_env.gateway import Gateway
from reference_env.sandbox import Sandbox
from reference_env.state import StateError
from reference_env.topology import (
    DEFAULT_CATALOG,
    DEFAULT_TOPOLOGY,
    TopologyError,
    load_catalog,
    load_topology,
)

TOKEN_ENV = "REFENV_TOKEN"
log = logging.getLogger("reference_env")


class _SharedLoopServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (two servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (uvicorn[standard] brings it): the gateway sits on every business call."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m reference_env", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True, help="persisted state, instance logs")
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--gateway-port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--topology", type=Path, default=DEFAULT_TOPOLOGY)
    parser.add_argument("--catalog", type=Path, default=DEFAULT_CATALOG)
    parser.add_argument(
        "--lightweight-instances",
        action="store_true",
        help="serve instances from this process instead of one process each (production-size benchmarks)",
    )
    return parser.parse_args(argv)


def _server(app: Callable[..., Awaitable[None]], host: str, port: int) -> _SharedLoopServer:  # app: ASGI
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="none",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_config=None,
        server_header=False,
        timeout_graceful_shutdown=3,
        backlog=1024,
    )
    return _SharedLoopServer(config)


async def serve(args: argparse.Namespace, token: str) -> int:
    topology = load_topology(args.topology)
    catalog = load_catalog(args.catalog, topology)
    sandbox = Sandbox(
        args.state_dir,
        topology,
        catalog,
        gateway_url=f"http://{args.host}:{args.gateway_port}",
        lightweight=args.lightweight_instances,
    )
    gateway = Gateway(sandbox)
    api_server = _server(create_app(sandbox, token), args.host, args.api_port)
    gateway_server = _server(gateway, args.host, args.gateway_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    await gateway.open()
    servers = [
        asyncio.create_task(gateway_server.serve(), name="gateway"),
        asyncio.create_task(api_server.serve(), name="api"),
    ]
    try:
        await sandbox.start()
        log.info(
            "reference environment up: api http://%s:%d gateway http://%s:%d",
            args.host,
            args.api_port,
            args.host,
            args.gateway_port,
        )
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *servers], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        failed = [t for t in servers if t in done]
        log.info("stopping: %s", "signal received" if not failed else f"{failed[0].get_name()} server ended")
    finally:
        api_server.should_exit = gateway_server.should_exit = True
        await asyncio.gather(*servers, return_exceptions=True)
        await sandbox.shutdown()
        await gateway.aclose()
    if api_server.started and gateway_server.started:
        return 0
    log.error("a server did not start (port in use?)")
    return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the gateway would log every business call
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"error: set the API bearer token in the environment variable {TOKEN_ENV}", file=sys.stderr)
        return 2
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(serve(args, token))
    except (TopologyError, StateError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
