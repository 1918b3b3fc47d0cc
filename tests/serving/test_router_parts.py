"""The ingress's parts without Serve: the variant directory (with plain objects standing in for the
Spark-variant deployments' handles: their answers are what a handle's ``.remote`` returns), the
prediction-log writer on a real Delta table, shadowing's rule and the bearer-token check."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from serving import logged_request
from serving._admin import bearer_token_valid, servable_weights
from serving._directory import VariantDirectory
from serving._log_writer import Answered, PredictionLogWriter
from serving._prediction_log import create_log_table
from serving._registry import ModelSource
from serving._requests import Envelope, Refused
from serving._settings import AppSettings, VariantSettings
from serving._variants import VariantAnswer, VariantInfo


class _Method:
    def __init__(self, answer: Any) -> None:
        self._answer = answer

    async def remote(self, *_: Any) -> Any:
        return self._answer


class _Handle:
    """What the directory uses of a deployment handle: ``info``, ``inputs``, ``score`` and ``broadcast``."""

    def __init__(self, variant: str, version: str | None, delta_version: str | None = None) -> None:
        ready = version is not None
        info = VariantInfo(
            variant,
            f"models:/demo@{variant}",
            ready=ready,
            missing=not ready,
            error=None,
            version=version,
            lineage={"data.delta_version": delta_version} if delta_version else {},
        )
        self.info = _Method(info)
        self.inputs = _Method(None)
        self.score = _Method(VariantAnswer(200, version=version, scorer="spark", output=b"[1]"))
        self.reloads = 0

    def broadcast(self, method: str) -> Any:
        assert method == "reload"
        self.reloads += 1
        outer = self

        class _Results:
            async def results_async(self) -> list[str]:
                return [f"reloaded {outer.reloads}"]

        return _Results()


def _settings(**variants: str | None) -> AppSettings:
    """Spark-scored variants only (no model is loaded in-process): name -> alias."""
    return AppSettings(
        app_name="app",
        model_name="demo",
        variants={
            name: VariantSettings(ModelSource("sqlite://", "demo", alias=alias), 1.0, remote=True)
            for name, alias in variants.items()
        },
    )


def _directory() -> VariantDirectory:
    handles = {"champion": _Handle("champion", "3", "7"), "challenger": _Handle("challenger", None)}
    directory = VariantDirectory(_settings(champion="champion", challenger="challenger"), handles)
    return directory


def test_the_directory_knows_the_loaded_versions_and_what_reaches_them() -> None:
    directory = _directory()
    infos = asyncio.run(directory.refresh())
    assert list(infos) == ["champion", "challenger"] and infos["challenger"].missing is True
    assert directory.versions == {"champion": "3"}  # the missing alias is not loaded
    assert directory.trained_on("3") == 7 and directory.trained_on("9") is None
    assert directory.version_of("challenger") == "none"
    # A model_id names a variant, an alias (with or without @) or a loaded version; anything else: none.
    assert [directory.target(name) for name in ("challenger", "@champion", "champion", "3", "4")] == [
        "challenger",
        "champion",
        "champion",
        "champion",
        None,
    ]
    assert directory.served() == ["3", "challenger", "champion"]
    # Only loaded variants take routed traffic, whatever their weight.
    assert directory.routable({"champion": 0.4, "challenger": 0.6}) == {"champion": 0.4}
    envelope = Envelope({"instances": [{}]}, 1, None, None)
    answer = asyncio.run(directory.call("champion", "score", envelope))
    assert (answer.status, answer.version, answer.output) == (200, "3", b"[1]")
    assert asyncio.run(directory.reload_remote()) == {"champion": ["reloaded 1"], "challenger": ["reloaded 1"]}


class _Silent:
    """A method of a deployment whose replica was lost: its calls wait (for a replacement that is slow)."""

    async def remote(self, *_: Any) -> Any:
        await asyncio.sleep(3600)


def test_a_spark_variant_whose_replica_does_not_answer_is_not_routed_to_and_its_calls_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The soak's finding: with the Spark-scored variant's replica SIGKILLed, its calls waited ~20 s for the
    replacement and the replica's refresh with them. Now the refresh takes it as not ready (no routed share),
    /models leaves it out, and a call naming it ends as a 503 at ``variant_timeout_s``."""
    import serving._directory as directory_module

    monkeypatch.setattr(directory_module, "REMOTE_STATUS_SECONDS", 0.2)
    settings = dataclasses.replace(_settings(champion="champion", fallback="fallback"), variant_timeout_s=0.3)
    lost: Any = _Handle("fallback", "5")
    directory = VariantDirectory(settings, {"champion": _Handle("champion", "3"), "fallback": lost})
    asyncio.run(directory.refresh())
    assert directory.routable({"champion": 0.9, "fallback": 0.1}) == {"champion": 0.9, "fallback": 0.1}
    lost.info = lost.inputs = lost.score = _Silent()  # SIGKILLed
    started = time.monotonic()
    infos = asyncio.run(directory.refresh())
    assert time.monotonic() - started < 2
    lost_info = infos["fallback"]
    assert lost_info.ready is False and "no replica answered within 0.2 s" in (lost_info.error or "")
    assert directory.routable({"champion": 0.9, "fallback": 0.1}) == {"champion": 0.9}
    answer = asyncio.run(directory.call("fallback", "score", Envelope({"instances": [{}]}, 1, None, None)))
    assert answer.status == 503 and "serving.variant_timeout_s = 0.3 s" in (answer.reason or ""), answer
    started = time.monotonic()
    asyncio.run(directory.served_variants({"champion": 1.0}))  # /models and the document: not held up either
    assert time.monotonic() - started < 2


def _answered(request_id: str, rows: int = 2, role: str = "routed") -> Answered:
    envelope = Envelope({"instances": [{"x": float(i)} for i in range(rows)]}, rows, None, None)
    return Answered(request_id, "score", "champion", role, "3", 7, envelope, orjson.dumps(envelope.payload), 0.0)


def test_the_writer_logs_answers_and_variant_failures_but_not_refused_requests(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    create_log_table(path)
    writer = PredictionLogWriter(path, max_buffer_rows=100, flush_seconds=60, model_name="demo")
    writer.offer(_answered("ok"), VariantAnswer(200, version="3", scorer="onnx", output=b"[1, 0]"))
    writer.offer(_answered("bad"), VariantAnswer.refused(422, "instances[0].x", "not a number"))
    writer.offer(_answered("boom"), VariantAnswer.refused(500, "model", "variant champion failed"))
    assert asyncio.run(writer.flush()) == 4  # two rows each: the answer's and the failure's, not the 422
    ok, boom = logged_request(path, "ok"), logged_request(path, "boom")
    assert [json.loads(row["output"]) for row in ok] == [1, 0]
    assert [json.loads(row["output"]) for row in boom] == [{"error": 500}] * 2
    assert {row["trained_on_delta_version"] for row in ok + boom} == {7}
    assert logged_request(path, "bad") == []
    off = PredictionLogWriter(None, max_buffer_rows=100, flush_seconds=60, model_name="demo")
    off.offer(_answered("ok"), VariantAnswer(200, version="3", output=b"[1, 0]"))
    assert off.log is None and asyncio.run(off.flush()) == 0


def test_with_wait_for_disk_an_answer_waits_for_its_fdatasync(tmp_path: Path) -> None:
    path = str(tmp_path / "log")
    create_log_table(path)

    async def answer_twice() -> list[bool]:
        waits = PredictionLogWriter(
            path, max_buffer_rows=100, flush_seconds=60, model_name="demo", wait_for_disk=True
        )
        waits.ensure_running()
        durable = waits.offer(_answered("a"), VariantAnswer(200, version="3", output=b"[1, 0]"))
        assert durable is not None
        await asyncio.wait_for(durable, 10)
        default = PredictionLogWriter(path, max_buffer_rows=100, flush_seconds=60, model_name="demo")
        default.ensure_running()
        unwaited = default.offer(_answered("b"), VariantAnswer(200, version="3", output=b"[1, 0]"))
        refused = waits.offer(_answered("c"), VariantAnswer.refused(422, "x", "not a number"))
        written = [await waits.flush(), await default.flush()]
        waits.close(None)
        default.close(None)
        return [durable.done(), unwaited is None, refused is None, written == [2, 2]]

    assert asyncio.run(answer_twice()) == [True, True, True, True]
    logged = logged_request(path, "a") + logged_request(path, "b")
    assert [row["request_id"] for row in logged] == ["a", "a", "b", "b"]


@pytest.mark.parametrize(
    ("header", "valid"),
    [
        ("Bearer s3cret", True),
        ("Bearer  s3cret ", True),
        ("Bearer wrong", False),
        ("s3cret", False),
        ("Basic s3cret", False),
        ("Bearer ", False),
        ("", False),
    ],
)
def test_the_bearer_token_check(header: str, valid: bool) -> None:
    assert bearer_token_valid(header, hashlib.sha256(b"s3cret").hexdigest()) is valid
    assert bearer_token_valid(header, None) is False  # no token configured: nothing is authorised


def test_weights_that_give_no_loaded_variant_traffic_are_refused_with_what_is_loaded() -> None:
    loaded = {"champion": "1"}  # @challenger does not exist yet
    servable_weights({"champion": 1e-6, "challenger": 1.0}, loaded)  # the loaded one gets a share: taken
    with pytest.raises(Refused) as refused:
        servable_weights({"champion": 0.0, "challenger": 1.0}, loaded)
    assert refused.value.status == 409
    assert refused.value.body["detail"] == {
        "field": "weights",
        "reason": "{'champion': 0.0, 'challenger': 1.0}: no variant with a loaded model would get traffic; "
        "loaded: champion (version 1) would get 0",
    }
    with pytest.raises(Refused, match="loaded: none"):
        servable_weights({"champion": 1.0}, {})
