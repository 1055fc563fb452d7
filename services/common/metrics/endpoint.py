"""A part's /metrics listener: where it listens, what it serves, and what a failure to
listen does (one clear log line; the part goes on serving without metrics).

PartMetrics is what a process entry point holds for its lifetime: nothing when the
part's *_METRICS_ADDR is empty; in a single process, the default registry (our series
and prometheus_client's process_*, python_gc_* and python_info) plus the part's own
collectors; for a family of processes (multiprocess.py), the merge of every process's
files, the family's process_* (process_tree.py), python_info and the part's collectors.

The listener is a thread of the serving process (prometheus_client's WSGI server), bound
to the configured address only: 127.0.0.1 unless a deployment says otherwise.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    PLATFORM_COLLECTOR,
    REGISTRY,
    CollectorRegistry,
    disable_created_metrics,
    start_http_server,
)
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from services.common.config import split_addr
from services.common.logs import log_event
from services.common.metrics.multiprocess import SharedFiles
from services.common.metrics.process_tree import OneProcessCollector, ProcessTreeCollector

logger = logging.getLogger("fulfillment.metrics")


class MetricsEndpoint:
    def __init__(self, addr: str, server: WSGIServer) -> None:
        self.addr = addr
        self.port: int = server.server_address[1]
        self._server = server
        self._owner = os.getpid()

    def close(self) -> None:
        if os.getpid() == self._owner:
            self._server.shutdown()
        self._server.server_close()


def start_endpoint(addr: str, registry: Collector, part: str) -> MetricsEndpoint | None:
    """Serve `registry` at http://addr/metrics from a daemon thread; None (and an error
    line) when the address cannot be bound."""
    try:
        host, port = split_addr(addr)
        server, _thread = start_http_server(port, host, registry)
    except (OSError, ValueError) as exc:
        log_event(
            logger, "metrics_unavailable", logging.ERROR, part=part, addr=addr,
            reason=str(exc) or type(exc).__name__, effect="serving on without /metrics",
        )
        return None
    endpoint = MetricsEndpoint(addr, server)
    log_event(logger, "metrics_serving", part=part, url=f"http://{addr}/metrics", pid=os.getpid())
    return endpoint


def in_process_registry(collectors: Sequence[Collector] = ()) -> CollectorRegistry:
    # Counters' *_created samples double what a scrape carries and nothing here reads them.
    disable_created_metrics()
    registry = CollectorRegistry()
    registry.register(REGISTRY)
    for collector in (OneProcessCollector(), *collectors):
        registry.register(collector)
    return registry


def aggregate_registry(files: SharedFiles, collectors: Sequence[Collector] = ()) -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(files.directory))
    for collector in (ProcessTreeCollector(), PLATFORM_COLLECTOR, *collectors):
        registry.register(collector)
    return registry


class PartMetrics:
    """One part's /metrics for the life of its process (see the module docstring)."""

    def __init__(
        self,
        part: str,
        addr: str,
        *,
        family: bool = False,
        collectors: Sequence[Collector] = (),
        registry: CollectorRegistry | None = None,
    ) -> None:
        """`registry`: serve these series (and `collectors`) alone, for a part that runs
        inside another part's process (the monitor in the worker's, `up`): the process's
        default registry and process_* belong to its host's endpoint, and served twice they
        would count twice in every sum over the parts."""
        self.part = part
        self.addr = addr
        self._collectors = tuple(collectors)
        self._registry = registry
        # Before any fork and before any series exists (multiprocess.py).
        self._files = SharedFiles.create(part) if addr and family else None
        self.endpoint: MetricsEndpoint | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.addr)

    def serve(self) -> None:
        if not self.addr:
            return
        if self._registry is not None:
            registry = self._registry
            for collector in self._collectors:
                registry.register(collector)
        elif self._files is not None:
            registry = aggregate_registry(self._files, self._collectors)
        else:
            registry = in_process_registry(self._collectors)
        self.endpoint = start_endpoint(self.addr, registry, self.part)

    def forked(self) -> None:
        """In a child forked after serve(): let go of the inherited listening socket (the
        descriptor only: the parent's listener goes on)."""
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None

    def process_exited(self, pid: int) -> None:
        if self._files is not None:
            self._files.process_exited(pid)

    def close(self) -> None:
        if self.endpoint is not None:
            self.endpoint.close()
            self.endpoint = None
        for collector in self._collectors:
            close = getattr(collector, "close", None)
            if close is not None:
                close()
        if self._files is not None:
            self._files.remove()
