"""Where sweeps keep Tune's state (``tuning.storage``): a local folder or a bucket prefix, reached through one
pyarrow filesystem that Tune is handed too (its ``storage_filesystem``), so that ``--resume`` finds a sweep
wherever it was started and the endpoint and keys are the environment's, as for the data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.storage import Location, check_reachable, filesystem, parse_location

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_STATE_FILE = "pipeline_sweep.json"  # beside Tune's own experiment state: the MLflow parent run id
FIELD = "tuning.storage"


@dataclass(frozen=True)
class SweepStorage:
    """The folder (or prefix) under which each sweep has a folder of its name."""

    location: Location

    @classmethod
    def of(cls, storage: Path | str) -> SweepStorage:
        """``tuning.storage`` as a location; for a bucket, checked to answer first (one line otherwise)."""
        location = parse_location(storage, FIELD)
        if not location.is_local:
            check_reachable(location, FIELD)
        return cls(location)

    @property
    def tune_filesystem(self) -> pafs.FileSystem | None:
        """The filesystem to hand Tune: None for a local folder (Tune's own default)."""
        return None if self.location.is_local else self._fs()[0]

    @property
    def tune_path(self) -> str:
        """Tune's ``storage_path``: the folder, or the prefix within the bucket's filesystem."""
        return self._fs()[1]

    def sweep_path(self, name: str) -> str:
        """Where Tune keeps the sweep ``name``, as Tune is given it (with ``tune_filesystem``)."""
        return f"{self.tune_path}/{name}"

    def describe(self, name: str) -> str:
        """The sweep's folder as a user writes it (a path, or an ``s3://`` URI)."""
        return f"{self.location.uri}/{name}" if not self.location.is_local else str(Path(self.tune_path) / name)

    def exists(self, name: str) -> bool:
        import pyarrow.fs as pafs

        fs, _ = self._fs()
        return bool(fs.get_file_info(self.sweep_path(name)).type != pafs.FileType.NotFound)

    def names(self, prefix: str) -> list[str]:
        """The sweeps whose name starts with ``prefix``, oldest name first."""
        import pyarrow.fs as pafs

        fs, root = self._fs()
        if fs.get_file_info(root).type == pafs.FileType.NotFound:
            return []
        found = fs.get_file_info(pafs.FileSelector(root, recursive=False))
        return sorted(
            info.base_name
            for info in found
            if info.type == pafs.FileType.Directory and info.base_name.startswith(prefix)
        )

    def parent_run(self, name: str) -> str | None:
        """The MLflow parent run id a sweep recorded when it started; None when it recorded none."""
        import pyarrow.fs as pafs

        fs, _ = self._fs()
        path = f"{self.sweep_path(name)}/{_STATE_FILE}"
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return None
        with fs.open_input_stream(path) as stream:
            return str(json.loads(stream.read())["parent_run_id"])

    def record_parent_run(self, name: str, run_id: str) -> None:
        fs, _ = self._fs()
        fs.create_dir(self.sweep_path(name), recursive=True)
        with fs.open_output_stream(f"{self.sweep_path(name)}/{_STATE_FILE}") as stream:
            stream.write(json.dumps({"parent_run_id": run_id}).encode())

    def _fs(self) -> tuple[pafs.FileSystem, str]:
        return filesystem(self.location)
