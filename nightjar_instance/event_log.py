"""The embedded Dagster event log: Dagster's SQLite storage, writing a batch of events in one transaction.

A run over a range of days records each partition's planned and done materialization of every asset: a 365-day
backfill of the chain writes about 5,700 events. Dagster batches those events (``DAGSTER_EVENT_BATCH_SIZE``) and
hands each batch to ``store_event_batch``, which its Postgres storage writes at once but its SQLite storage writes
one by one, each in its own connections and transactions (about 10 ms an event on this machine, 33 ms under
load: 190 of the 254 s of that backfill; ``python -m bench.backfill``). This storage writes a batch in one run-shard
transaction and one index transaction, the same rows Dagster's ``store_event`` writes.

Dagster hands over batches only where ``DAGSTER_EVENT_BATCH_SIZE`` is set in the environment of the process that
stores events (run worker, webserver, daemon): the Makefile exports it for every target, deploy/prod.env.example
sets it for a deployment. This class never sets it: a storage that changed its process's environment would change
every other Dagster instance in that process too (a test session's, for one). Without it, events are stored one by
one, as by Dagster's own SQLite storage: the same records, slower.

Configured in ``dagster_home/dagster.yaml`` (``event_log_storage``); Postgres deployments keep Dagster's own
storage, which batches natively once ``DAGSTER_EVENT_BATCH_SIZE`` is set (deploy/prod.env.example).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import dagster as dg

# Dagster's documented module path for configuring its SQLite event log in dagster.yaml.
from dagster._core.storage.event_log import SqliteEventLogStorage

from nightjar_instance.storage import creation_lock, dagster_home

BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"  # read by Dagster at every event; set by the Makefile, never here


class BatchedSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's SQLite event log; a batch of asset events is written in two transactions instead of four per event.

    Config: ``base_dir`` (optional; default ``$DAGSTER_HOME/history/runs``, where Dagster's default storage keeps
    it, so switching an existing home to this class keeps its history). The default comes from the environment
    because a storage class is never told which home it belongs to: open a home as Dagster's processes do, with
    ``DAGSTER_HOME`` pointing at it (``DagsterInstance.get()``); ``DagsterInstance.from_config(other_dir)`` with
    another ``DAGSTER_HOME`` set would read that other home's events.
    """

    def __init__(self, base_dir: str, inst_data=None):
        with creation_lock(base_dir):  # a fresh home's index database, made by one process (storage.py)
            super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"base_dir": dg.Field(dg.StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        base_dir = config_value.get("base_dir") or os.path.join(dagster_home(), "history", "runs")
        return cls(base_dir, inst_data=inst_data)

    def store_event_batch(self, events: Sequence) -> None:
        batched = self._batched(events)
        if len(batched) < 2:  # nothing to gain: Dagster's own path
            for event in events:
                self.store_event(event)
            return
        # Each event as the row Dagster's prepare_insert_event would insert (serialized once, for both shards),
        # inserted with one executemany per shard: a statement per event cost as much as the rows themselves.
        rows = [self._event_to_row(e) for e in batched]
        by_run: dict[str, list[dict]] = {}
        for event, row in zip(batched, rows, strict=True):
            by_run.setdefault(event.run_id, []).append(row)
        written: dict[str, list[int]] = {}
        try:
            for run_id, run_rows in by_run.items():
                with self.run_connection(run_id) as conn:
                    ids = _inserted_ids(conn, run_rows)
                written[run_id] = ids  # committed: taken back if the index write fails
            self._index_batch(batched, rows)
        except BaseException:
            # Dagster answers a failed batch by storing each event again, one by one: take back the run-shard rows
            # this batch committed, so that no event is stored twice.
            self._take_back(written)
            raise
        written_ids = {id(event) for event in batched}
        for event in events:  # anything else a batch may hold (run status events...), as Dagster stores it
            if id(event) not in written_ids:
                self.store_event(event)

    def _batched(self, events: Sequence) -> list:
        """The events written with their batch: asset events (materializations, observations, planned
        materializations) and planned checks (a run plans every check it executes, one event each), which Dagster's
        ``store_event`` writes in three transactions apiece. Whether the storage has the checks' table is asked
        once per batch (a query on a new connection)."""
        from dagster._core.events import ASSET_EVENTS, DagsterEventType

        planned = DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
        kinds = [event.dagster_event_type if event.is_dagster_event else None for event in events]
        checks = planned in kinds and self.supports_asset_checks
        return [
            event
            for event, kind in zip(events, kinds, strict=True)
            if kind in ASSET_EVENTS or (checks and kind == planned)
        ]

    def store_asset_check_event(self, event, event_id: int | None) -> None:
        """Dagster's, except for a check planned over many partitions (a ranged run): Dagster writes one row per
        partition, each holding the serialized event, and serializes the event (with its partitions) again for
        every row: 35 checks over 365 days took 3 s of the 22 s of a year's backfill (``python -m
        bench.backfill``). Here the event is serialized once; the rows are the same."""
        from dagster._core.events import DagsterEventType
        from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

        if (
            event.dagster_event_type != DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
            or event.dagster_event.event_specific_data.partitions_subset is None
            or not self.supports_asset_checks
        ):
            super().store_asset_check_event(event, event_id)
            return
        rows = _planned_check_rows(event, event_id)
        if rows:
            with self.index_connection() as conn:
                conn.execute(AssetCheckExecutionsTable.insert(), rows)  # one statement, executed per row

    def _take_back(self, written: dict[str, list[int]]) -> None:
        from dagster._core.storage.event_log.schema import SqlEventLogStorageTable

        for run_id, ids in written.items():
            with self.run_connection(run_id) as conn:
                conn.execute(SqlEventLogStorageTable.delete().where(SqlEventLogStorageTable.c.id.in_(ids)))

    def _index_batch(self, batched: Sequence, rows: Sequence[dict]) -> None:
        """What store_event does per event, for the whole batch in one index transaction: the events' rows; for
        asset events their tags and the asset's entry (its latest event of each kind, a last-write-wins upsert:
        written once per asset and kind, with the last event of that kind, it ends as Dagster's event-by-event
        writes leave it); for planned checks their execution rows."""
        from dagster._core.events import ASSET_EVENTS
        from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable

        with self.index_transaction() as conn:
            event_ids = _inserted_ids(conn, rows)
            if any(event_id is None for event_id in event_ids):
                raise dg.DagsterInvariantViolationError("Cannot store asset event tags for null event id.")
            assets = [i for i, event in enumerate(batched) if event.dagster_event_type in ASSET_EVENTS]
            if assets:
                self._store_asset_event_tags(conn, [batched[i] for i in assets], [event_ids[i] for i in assets])
            last: dict[tuple, int] = {}
            for i in assets:
                last[(batched[i].dagster_event.asset_key, batched[i].dagster_event_type)] = i
            for i in sorted(last.values()):
                self._store_asset_event(conn, batched[i], event_ids[i])
            checks = [
                row
                for i, event in enumerate(batched)
                if event.dagster_event_type not in ASSET_EVENTS
                for row in _planned_check_rows(event, event_ids[i])
            ]
            if checks:
                conn.execute(AssetCheckExecutionsTable.insert(), checks)


def _planned_check_rows(event, event_id: int | None) -> list[dict]:
    """The rows Dagster's ``_store_asset_check_evaluation_planned`` writes for a planned check: one per partition
    of its subset (one without a partition when it has none), each holding the event, serialized once here."""
    from datetime import UTC, datetime

    from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

    planned = event.dagster_event.event_specific_data
    partitions = planned.partitions_subset.get_partition_keys() if planned.partitions_subset is not None else [None]
    serialized = dg.serialize_value(event)
    timestamp = datetime.fromtimestamp(event.timestamp, UTC).replace(tzinfo=None)  # as _event_insert_timestamp
    return [
        {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "partition": partition,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialized,
            "evaluation_event_timestamp": timestamp,
            "evaluation_event_storage_id": event_id,
        }
        for partition in partitions
    ]


def _inserted_ids(conn, rows: Sequence[dict]) -> list[int]:
    """Insert ``rows`` into the event log table of ``conn``'s shard in one executemany; their ids, in order."""
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable

    insert = SqlEventLogStorageTable.insert().returning(SqlEventLogStorageTable.c.id, sort_by_parameter_order=True)
    return [row[0] for row in conn.execute(insert, list(rows))]
