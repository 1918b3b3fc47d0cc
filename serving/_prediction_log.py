"""The prediction log: every answered prediction, one row per scored record, appended to a Delta table by
delta-rs (no Spark in serving).

A request appends one frame to its replica's write-ahead file (``serving._wal``) before its answer goes
out; a bounded backlog drops the entry and counts its rows instead. A replica's background task commits
the sealed files in batches, on a thread, and adopts the files of replicas that died; a graceful stop
commits what is left.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from pipeline.storage import delta_storage_options, is_object_store, table_location
from serving._requests import parse_json
from serving._wal import WAL_FOLDER, Frame, WriteAheadLog, encode, orphaned, read_segment, release, segment_number

logger = logging.getLogger("ray.serve")

LOG_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int32(), nullable=False),  # the record's index in its request
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("date", pa.string(), nullable=False),  # UTC day of `time`: the partition
        pa.field("route", pa.string(), nullable=False),  # predict or recommend
        pa.field("variant", pa.string(), nullable=False),
        pa.field("role", pa.string(), nullable=False),  # routed, direct (model_id) or shadow
        pa.field("model", pa.string(), nullable=False),
        pa.field("version", pa.string(), nullable=False),
        pa.field("trained_on_delta_version", pa.int64()),  # the Delta version the model version was trained on
        pa.field("scorer", pa.string()),  # onnx or spark
        pa.field("input", pa.string(), nullable=False),  # the record as sent (JSON)
        pa.field("output", pa.string(), nullable=False),  # its prediction (JSON: label, probabilities...)
        pa.field("latency_ms", pa.float64(), nullable=False),  # the whole request's, as the ingress saw it
        pa.field("sticky_key_hash", pa.string()),  # sha256 (16 hex digits) of the sticky key's value
    ]
)
PARTITION = "date"
_CHUNK = 256  # entries turned into rows at a time by a commit
_APP = "pipeline-prediction-log-"  # + a replica's write-ahead owner: the Delta txn app id of its commits


@dataclass(frozen=True)
class AnsweredRequest:
    """One answered request, as the ingress hands it over: the body's bytes as they came, parsed again only
    when committed. Thousands of these wait for a commit: a parsed body (dicts and lists the garbage
    collector tracks, old enough to reach its last generation) would make every full collection longer."""

    request_id: str
    time: float  # seconds since the epoch
    route: str  # predict or recommend
    variant: str
    role: str
    model: str
    version: str
    trained_on_delta_version: int | None
    scorer: str | None
    body: bytes
    output: bytes  # the answer's predictions (a JSON list, one item per record)
    latency_seconds: float
    sticky: str | None
    rows: int

    def frame(self) -> bytes:
        """The entry as one write-ahead frame."""
        meta = orjson.dumps(
            [
                self.request_id,
                self.time,
                self.route,
                self.variant,
                self.role,
                self.model,
                self.version,
                self.trained_on_delta_version,
                self.scorer,
                self.latency_seconds,
                self.sticky,
                self.rows,
            ]
        )
        return encode(Frame(meta, self.body, self.output))

    @classmethod
    def from_frame(cls, frame: Frame) -> AnsweredRequest:
        request_id, at, route, variant, role, model, version, trained_on, scorer, latency, sticky, rows = (
            orjson.loads(frame.meta)
        )
        return cls(
            request_id,
            at,
            route,
            variant,
            role,
            model,
            version,
            trained_on,
            scorer,
            frame.body,
            frame.output,
            latency,
            sticky,
            rows,
        )


@dataclass(frozen=True)
class LogCounts:
    """Rows committed, rows dropped (a full backlog, or not written ahead), failed commits: since last asked."""

    written: int = 0
    dropped: int = 0
    failed_writes: int = 0

    def __add__(self, other: LogCounts) -> LogCounts:
        return LogCounts(
            self.written + other.written, self.dropped + other.dropped, self.failed_writes + other.failed_writes
        )


def sticky_key_hash(value: str | None) -> str | None:
    return None if value is None else hashlib.sha256(value.encode()).hexdigest()[:16]


def _inputs(route: str, payload: dict[str, Any]) -> list[Any]:
    """The request's records, in the order its outputs come back."""
    if route == "recommend":
        users = payload["users"] if payload.get("users") is not None else [payload["user"]]
        return [{"user": user, "k": payload.get("k", 10)} for user in users]
    if payload.get("features") is not None:
        return [payload["features"]]
    return list(payload["instances"])


def log_table(entries: list[AnsweredRequest]) -> pa.Table:
    """The rows of ``entries``: one per scored record."""
    columns: dict[str, list[Any]] = {name: [] for name in LOG_SCHEMA.names}
    for entry in entries:
        outputs = orjson.loads(entry.output)
        try:
            inputs = _inputs(entry.route, parse_json(entry.body))
        except Exception:  # cannot happen for a body that was answered; never let one entry stop the log
            inputs = [None] * len(outputs)
        at = dt.datetime.fromtimestamp(entry.time, tz=dt.UTC)
        shared = {
            "request_id": entry.request_id,
            "time": at,
            "date": at.date().isoformat(),
            "route": entry.route,
            "variant": entry.variant,
            "role": entry.role,
            "model": entry.model,
            "version": entry.version,
            "trained_on_delta_version": entry.trained_on_delta_version,
            "scorer": entry.scorer,
            "latency_ms": entry.latency_seconds * 1000,
            "sticky_key_hash": sticky_key_hash(entry.sticky),
        }
        for row, (record, output) in enumerate(zip(inputs, outputs, strict=False)):
            for name, value in shared.items():
                columns[name].append(value)
            columns["row"].append(row)
            columns["input"].append(orjson.dumps(record).decode())
            columns["output"].append(orjson.dumps(output).decode())
    return pa.Table.from_pydict(columns, schema=LOG_SCHEMA)


def create_log_table(path: str | Path) -> None:
    """The empty log table, unless one is there (before the replicas start: they only append)."""
    from deltalake import DeltaTable

    storage = table_location(path, "serving.prediction_log.path")
    DeltaTable.create(
        str(path),
        LOG_SCHEMA,
        mode="ignore",
        partition_by=[PARTITION],
        name="prediction_log",
        storage_options=storage,
    )


def is_delta_table(path: str | Path) -> bool:
    """Whether a Delta table is at ``path`` (a folder or a bucket prefix)."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    # Not DeltaTable.is_deltatable: with an S3 endpoint it hung for its 180 s of retries on moto (delta-rs
    # 1.6.6) where opening the same table answered at once.
    try:
        DeltaTable(str(path), storage_options=delta_storage_options(path))
    except TableNotFoundError:
        return False
    return True


def write_ahead_folder(path: str | Path, root: Path) -> Path:
    """Where a log's replicas write ahead when not configured: inside a local log (replicas sharing the disk
    adopt each other's files), or, for a log in a bucket, a local folder of that log's own under the
    project's ``root`` (``.pipeline/prediction_log_wal/<hash of the URI>``: two logs never adopt each
    other's files)."""
    if not is_object_store(path):
        return Path(path) / WAL_FOLDER
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return root / ".pipeline" / "prediction_log_wal" / digest


@dataclass
class PredictionLog:
    """One ingress replica's side of the log: its write-ahead file and the commits of what it holds (and
    of what dead replicas left). ``max_buffer_rows`` bounds the rows waiting for a commit; ``write_ahead``
    is the local folder of the write-ahead files (default for a local log: its ``_wal`` folder)."""

    path: str
    max_buffer_rows: int
    write_ahead: Path | None = None
    _wal: WriteAheadLog | None = None  # made at the first entry
    _pending_rows: int = 0
    _counts: LogCounts = field(default_factory=LogCounts)
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the counts: commits run on a thread
    _committing: threading.Lock = field(default_factory=threading.Lock)  # one commit at a time
    # Kept open: each commit then brings its snapshot up to date instead of replaying the table's log.
    _table: Any = None

    def __post_init__(self) -> None:
        if self.write_ahead is None:
            if is_object_store(self.path):
                raise ValueError(f"prediction log {self.path}: a log in a bucket needs a local write-ahead folder")
            self.write_ahead = Path(self.path) / WAL_FOLDER

    @property
    def _wal_root(self) -> Path:
        assert self.write_ahead is not None  # set by __post_init__
        return self.write_ahead

    def offer(self, entry: AnsweredRequest) -> bool:
        """Write ``entry`` ahead (it survives this process from now on); False, and its rows counted as
        dropped, when the backlog is full or the file cannot be written."""
        frame = entry.frame()
        with self._lock:
            if self._pending_rows + entry.rows > self.max_buffer_rows:
                self._counts += LogCounts(dropped=entry.rows)
                return False
            try:
                if self._wal is None:
                    self._wal = WriteAheadLog(self._wal_root)
                self._wal.append(frame)
            except OSError as error:
                logger.warning(
                    "prediction log: %d rows of request %s not written ahead: %s",
                    entry.rows,
                    entry.request_id,
                    error,
                )
                self._counts += LogCounts(dropped=entry.rows)
                return False
            self._pending_rows += entry.rows
            return True

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def sync(self) -> None:
        """Make what was written ahead survive the machine too (fdatasync)."""
        if self._wal is not None:
            self._wal.sync()

    def commit(self) -> int:
        """Commit what this replica wrote ahead, then what dead replicas left; the rows written. A failed
        commit leaves the files for the next one."""
        with self._committing:
            return self._commit_own() + self._adopt()

    def close(self) -> int:
        """At a graceful stop: a last commit, then the write-ahead folder let go (removed when empty; what a
        failed commit left there is adopted by another replica, or by the next start)."""
        written = self.commit()
        if self._wal is not None:
            self._wal.close(keep=self._pending_rows > 0)
        return written

    def _commit_own(self) -> int:
        if self._wal is None:
            return 0
        sealed = self._wal.seal()
        if not sealed:
            return 0
        segments = _read(sealed)
        try:
            written = self._append(self._wal.owner, segments)
        except Exception as error:
            self._failed(error)
            return 0
        for path in sealed:
            path.unlink()
        with self._lock:
            self._pending_rows -= sum(entry.rows for _, entries in segments for entry in entries)
            self._counts += LogCounts(written=written)
        return written

    def _adopt(self) -> int:
        """Commit the write-ahead files of replicas that are gone (each once: see ``serving._wal``)."""
        root, written = self._wal_root, 0
        own = self._wal.owner if self._wal is not None else ""
        for owner, paths, lock in orphaned(root, own):
            rows = None
            try:
                rows = self._append(owner, _read(paths)) if paths else 0
            except Exception as error:
                self._failed(error)
            finally:
                release(root, owner, lock, committed=rows is not None)
            if rows:
                logger.info("prediction log: %d rows left by a stopped replica (%s) committed", rows, owner)
                written += rows
                with self._lock:
                    self._counts += LogCounts(written=rows)
        return written

    def _append(self, owner: str, segments: list[tuple[Path, list[AnsweredRequest]]]) -> int:
        """Append the rows of an owner's ``segments`` as one commit that names the last of them, leaving out
        segments an earlier commit named; the rows written."""
        from deltalake import CommitProperties, DeltaTable, Transaction, write_deltalake

        if self._table is None:
            self._table = DeltaTable(self.path, storage_options=delta_storage_options(self.path))
        else:
            self._table.update_incremental()  # other replicas' commits, adoptions among them
        app = _APP + owner
        done = self._table.transaction_version(app)  # set when its owner died after a commit, before cleanup
        entries = [
            entry for path, batch in segments if done is None or segment_number(path) > done for entry in batch
        ]
        if not entries:
            return 0
        tables = []
        for start in range(0, len(entries), _CHUNK):
            tables.append(log_table(entries[start : start + _CHUNK]))
            # Between chunks the GIL goes back to the event loop's thread at once: a request waits for
            # about one chunk's work (~1 ms), not for Python's 5 ms switch interval, again and again.
            time.sleep(0)
        table = pa.concat_tables(tables)
        last = Transaction(app, max(segment_number(path) for path, _ in segments))
        write_deltalake(
            self._table,
            table,
            mode="append",
            partition_by=[PARTITION],
            commit_properties=CommitProperties(app_transactions=[last]),
        )
        return table.num_rows

    def _failed(self, error: Exception) -> None:
        self._table = None  # opened again for the next try
        logger.warning("prediction log: a commit to %s failed (rows kept for the next): %s", self.path, error)
        with self._lock:
            self._counts += LogCounts(failed_writes=1)

    def take_counts(self) -> LogCounts:
        """What happened since the last call (for /metrics)."""
        with self._lock:
            counts, self._counts = self._counts, LogCounts()
        return counts

    def restore_counts(self, counts: LogCounts) -> None:
        """Counts taken but not delivered: added back, to go with the next report."""
        with self._lock:
            self._counts += counts


def _read(paths: list[Path]) -> list[tuple[Path, list[AnsweredRequest]]]:
    return [(path, [AnsweredRequest.from_frame(frame) for frame in read_segment(path)]) for path in paths]


def logged_request(path: str | Path, request_id: str) -> list[dict[str, Any]]:
    """The log's rows of one request (routed or direct, and shadow), in row order; [] when it has none.
    Raises FileNotFoundError when there is no log table at ``path``."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        table = DeltaTable(str(path), storage_options=delta_storage_options(path))
    except TableNotFoundError:
        raise FileNotFoundError(f"no prediction log at {path}") from None
    rows = table.to_pyarrow_dataset().to_table(filter=pc.field("request_id") == request_id).to_pylist()
    return sorted(rows, key=lambda row: (row["role"] == "shadow", row["variant"], row["row"]))
