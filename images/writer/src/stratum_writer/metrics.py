"""The writer's Prometheus metrics, in a registry of its own (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BATCH_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000)
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class WriterMetrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.queue_events = Gauge(
            "stratum_writer_queue_events", "Share events in the spool not yet committed", registry=r
        )
        self.queue_bytes = Gauge(
            "stratum_writer_queue_bytes", "Spool bytes not yet committed", registry=r
        )
        self.oldest_age = Gauge(
            "stratum_writer_oldest_event_age_seconds",
            "Age of the oldest share read from the spool and not yet committed",
            registry=r,
        )
        self.inserted = Counter(
            "stratum_writer_inserted", "Shares inserted into the database", registry=r
        )
        self.duplicates = Counter(
            "stratum_writer_duplicates_ignored",
            "Shares already in the database (replays after a crash), ignored",
            registry=r,
        )
        self.retries = Counter(
            "stratum_writer_retries", "Failed batch attempts, by error kind", ["kind"], registry=r
        )
        self.dead_letters = Counter(
            "stratum_writer_dead_letters", "Shares the database refused, set aside", registry=r
        )
        self.dead_letter_bytes = Gauge(
            "stratum_writer_dead_letter_bytes",
            "Size of the dead-letter file beside the spool",
            registry=r,
        )
        self.dead_letter_limit = Gauge(
            "stratum_writer_dead_letter_limit_bytes", "The dead-letter file's cap", registry=r
        )
        self.dead_letters_full = Gauge(
            "stratum_writer_dead_letters_full",
            "1 while the dead-letter file is at its cap and a refused share waits in the spool",
            registry=r,
        )
        self.batch_size = Histogram(
            "stratum_writer_batch_size", "Shares per committed batch", buckets=_BATCH_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.flush_seconds = Histogram(
            "stratum_writer_flush_seconds", "Time to commit one batch", buckets=_LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.backend_up = Gauge(
            "stratum_writer_backend_up", "1 when the last database call succeeded", registry=r
        )
        self.workers = Gauge("stratum_writer_workers", "Parallel flush workers", registry=r)
        self.spool_damaged = Counter(
            "stratum_writer_spool_damaged_bytes",
            "Spool bytes that were no record (torn or damaged), moved to the quarantine file",
            registry=r,
        )
        self.spool_quarantine = Gauge(
            "stratum_writer_spool_quarantine_bytes",
            "Damaged spool bytes the quarantine file beside the spool holds for a person",
            registry=r,
        )
        self.schema_version = Gauge(
            "stratum_writer_schema_version", "Highest applied schema migration", registry=r
        )
        # SQLite only: there the writer runs retention itself (elsewhere the CronJob does)
        self.retention_removed = Counter(
            "stratum_writer_retention_removed_rows",
            "Rows removed by retention, by table",
            ["table"],
            registry=r,
        )
        self.retention_last_run = Gauge(
            "stratum_writer_retention_last_run_timestamp_seconds",
            "When retention last ran to the end",
            registry=r,
        )
