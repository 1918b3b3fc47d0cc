"""Moving the serving aliases: promotion (the old champion kept as @previous) and rollback. Every move is
an MLflow run (tag ``kind=alias-move``) naming the versions, the reason and the comparison behind it."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import TrackingConfig
from pipeline.tracking._versions import RegistryError, alias_version, connect, set_alias
from pipeline.tracking.facts import CHALLENGER, CHAMPION, PREVIOUS


@dataclass(frozen=True)
class AliasMove:
    """@champion moved from ``replaced`` (None: unset) to ``version``; ``run_id`` records it."""

    version: str
    replaced: str | None
    previous: str | None  # the version @previous points at afterwards
    run_id: str


def _record(tracking: TrackingConfig, move: dict[str, str], comparison_run_id: str | None) -> str:
    import mlflow

    connect(tracking)
    params = {**move, **({"comparison_run_id": comparison_run_id} if comparison_run_id else {})}
    name = f"{move['action']}-v{move['to_version']}"
    with mlflow.start_run(run_name=name, tags={"kind": "alias-move"}) as run:
        mlflow.log_params(params)
    return str(run.info.run_id)


def promote(
    tracking: TrackingConfig, version: str, reason: str = "by hand", comparison_run_id: str | None = None
) -> AliasMove:
    """Point @champion at ``version``; the version it replaces becomes @previous (for ``rollback``)."""
    client = connect(tracking)
    model = tracking.registered_model
    known = {str(v.version) for v in client.search_model_versions(f"name = '{model}'")}
    if str(version) not in known:
        raise RegistryError(f"--version {version}: {model!r} has versions {sorted(known, key=int) or 'none'}")
    replaced = alias_version(client, model, CHAMPION)
    set_alias(client, model, CHAMPION, str(version))
    if alias_version(client, model, CHALLENGER) == str(version):
        client.delete_registered_model_alias(model, CHALLENGER)
    if replaced is not None and replaced != str(version):
        set_alias(client, model, PREVIOUS, replaced)
    previous = alias_version(client, model, PREVIOUS)
    move = {
        "action": "promote",
        "alias": CHAMPION,
        "from_version": replaced or "none",
        "to_version": str(version),
        "reason": reason,
    }
    return AliasMove(str(version), replaced, previous, _record(tracking, move, comparison_run_id))


def rollback(
    tracking: TrackingConfig, reason: str | None = None, comparison_run_id: str | None = None
) -> AliasMove:
    """Point @champion back at @previous (which is then cleared: a second rollback has nothing to undo)."""
    client = connect(tracking)
    model = tracking.registered_model
    previous = alias_version(client, model, PREVIOUS)
    if previous is None:
        raise RegistryError(f"rollback: {model!r} has no @previous version (set when a promotion replaces one)")
    replaced = alias_version(client, model, CHAMPION)
    set_alias(client, model, CHAMPION, previous)
    client.delete_registered_model_alias(model, PREVIOUS)
    move = {
        "action": "rollback",
        "alias": CHAMPION,
        "from_version": replaced or "none",
        "to_version": previous,
        "reason": reason or f"rollback of version {replaced}",
    }
    return AliasMove(previous, replaced, None, _record(tracking, move, comparison_run_id))
