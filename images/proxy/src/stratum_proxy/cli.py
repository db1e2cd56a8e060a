"""``stratum-proxy``: serve miners, relay to the pool, record every share's fate.

Exit codes: 0 after a clean shutdown, 2 for a bad configuration (one line naming it).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from sharelog import logfmt
from sharelog.event_loop import prefer_uvloop
from sharelog.gc_tuning import freeze_startup_heap
from sharelog.spool import SpoolProducer
from stratum_proxy import __version__
from stratum_proxy.config import ConfigError, ProxyConfig, load_config, split_address
from stratum_proxy.connection import ProxyContext
from stratum_proxy.exporting import MetricsThread
from stratum_proxy.metrics import ProxyMetrics
from stratum_proxy.server import ProxyServer
from stratum_proxy.session import SessionSettings
from stratum_proxy.upstream import UpstreamPool

log = logging.getLogger("stratum_proxy")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="stratum-proxy", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"stratum-proxy {__version__}")
    p.add_argument("--config", type=Path, help="JSON settings file (the operator's ConfigMap)")
    p.add_argument("--listen", help="HOST:PORT for miners")
    p.add_argument("--metrics-listen", help="HOST:PORT for /metrics and /healthz")
    p.add_argument(
        "--upstream", dest="upstreams", action="append", help="pool URL (repeat for failover)"
    )
    p.add_argument(
        "--spool", dest="spool_dir", type=Path, help="spool directory shared with the writer"
    )
    p.add_argument("--pool", help="the StratumPool's name, recorded with each share")
    return p


async def serve(config: ProxyConfig, ready: asyncio.Event | None = None) -> int:
    metrics = ProxyMetrics()
    spool = SpoolProducer(
        config.spool_dir,
        max_bytes=config.spool_max_bytes,
        fsync_interval=config.spool_fsync_interval_s,
    )
    spool.start()
    settings = SessionSettings(
        pool=config.pool,
        proxy_instance=config.proxy_instance,
        upstream_account=config.upstream_account,
        upstream_password=config.upstream_password,
        worker_separator=config.upstream_worker_separator,
        local_reject=config.local_reject,
        submit_timeout=config.submit_timeout_s,
        max_submits_per_s=config.max_submits_per_s,
        submit_rate_window=config.submit_rate_window_s,
    )
    ca_file = str(config.upstream_ca_file) if config.upstream_ca_file else None

    def failover_list(urls: list[str]) -> UpstreamPool:
        return UpstreamPool(urls, insecure_tls=config.upstream_insecure_tls, ca_file=ca_file)

    pools = {"": failover_list(config.upstreams)}  # "": miners without a CONNECT preamble
    pools.update((name, failover_list(urls)) for name, urls in config.routes.items())
    ctx = ProxyContext(config, settings, pools, spool, metrics, asyncio.Event())
    server = ProxyServer(ctx)

    def refresh() -> None:  # on the side port's thread
        metrics.spool_appended.set(spool.appended)
        metrics.spool_dropped.set(spool.dropped)

    status = MetricsThread(metrics, lambda: (not ctx.stopping.is_set(), "serving"), refresh,
                           config.sidecar_metrics)  # fmt: skip
    host, port = split_address(config.listen)
    bound = await server.start(host, port)
    mhost, mport = split_address(config.metrics_listen)
    mbound = await status.start(mhost, mport)
    probes = [asyncio.create_task(p.probe_loop()) for p in pools.values()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    freeze_startup_heap()
    log.info("serving miners on :%d (metrics :%d), upstreams %s", bound, mbound, config.upstreams)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("SIGTERM: stopping")
    await server.shutdown(config.shutdown_grace_s)
    for task in probes:
        task.cancel()
    await status.close()
    await spool.close()
    log.info("stopped: %d shares spooled, %d dropped", spool.appended, spool.dropped)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    overrides = {k: v for k, v in vars(args).items() if k != "config"}
    try:
        config = load_config(args.config, overrides)
    except ConfigError as exc:
        print(f"stratum-proxy: {exc}", file=sys.stderr)
        return 2
    logfmt.configure(config.log_level)
    prefer_uvloop()
    try:
        return asyncio.run(serve(config))
    except (OSError, ConfigError) as exc:
        print(f"stratum-proxy: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
