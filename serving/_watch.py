"""The app acting on its own experiment (``experiment.auto_promote`` / ``auto_rollback``, off by default):
one actor per app checks the prediction log and the feedback every ``check_seconds``, moves the aliases in
MLflow when the evidence says so (recorded with the comparison behind it) and has the app reload.

The registry is reached through ``pipeline.tracking.registry``, its public Spark-free part (not the package
as a whole, whose training side imports Spark: serving never does)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from typing import Any

import ray

from comparison import promotion_decision
from pipeline.config import TrackingConfig
from pipeline.tracking.facts import CHALLENGER, CHAMPION, PREVIOUS
from serving._experiment import OnlineReport, log_online_comparison, online_report
from serving._settings import STATE_NAMESPACE, WatchSettings

logger = logging.getLogger("ray.serve")
# A redeploy starts its replicas in well under this; a reload waits for them (see _wait_until_running).
_RELOAD_WAIT_SECONDS = 600.0


def watcher_name(app_name: str) -> str:
    return f"{app_name}-experiment"


def _aliases(tracking: TrackingConfig) -> dict[str, str]:
    """Alias -> version, in one registry call (listing the versions would read every version's run)."""
    from pipeline.tracking.registry import connect

    model = connect(tracking).get_registered_model(tracking.registered_model)
    return {alias: str(version) for alias, version in model.aliases.items()}


def _record(settings: WatchSettings, report: OnlineReport, reason: str) -> str:
    return log_online_comparison(
        settings.tracking, report, settings.rules, "online, by the serving app", reason=reason
    )


def check_once(settings: WatchSettings) -> str | None:
    """One look at the evidence; what was done (one line), or None. Promotion: @challenger better than
    @champion on routed traffic and within its guardrails. Rollback: @champion outside its guardrails while
    a @previous exists."""
    from pipeline.tracking.registry import promote, rollback

    aliases = _aliases(settings.tracking)
    champion, challenger, previous = aliases.get(CHAMPION), aliases.get(CHALLENGER), aliases.get(PREVIOUS)
    if champion is None:
        return None
    if settings.auto_rollback and previous is not None and previous != champion:
        report = online_report(settings.log_path, settings.feedback_path, champion, previous, settings.rules)
        breached = report.breaches_of(champion)
        if breached:
            reason = f"auto rollback: {'; '.join(map(str, breached))}"
            moved = rollback(settings.tracking, reason, _record(settings, report, reason))
            return f"{reason}: @champion -> version {moved.version}"
    if settings.auto_promote and challenger is not None and challenger != champion:
        report = online_report(
            settings.log_path,
            settings.feedback_path,
            champion,
            challenger,
            settings.rules,
            weights=settings.weights,
        )
        decision = promotion_decision(report.comparisons[:1], settings.rules.metric)
        # A split that does not fit the weights (a sample ratio mismatch) biases the verdict: no move on it.
        if decision.promote and report.trusted and not report.breaches_of(challenger):
            reason = f"auto promotion: {decision.reason}"
            run_id = _record(settings, report, reason)
            promote(settings.tracking, challenger, reason=reason, comparison_run_id=run_id)
            return f"{reason}: @champion -> version {challenger}"
    return None


async def _reload_app(app_name: str) -> None:
    from ray import serve

    from serving._app import INGRESS_NAME

    await serve.get_deployment_handle(INGRESS_NAME, app_name).reload_all.remote()


def _wait_until_running(app_name: str, timeout: float) -> bool:
    """Whether the app is RUNNING within ``timeout`` s. The watcher starts with a (re)deploy: a move made
    while the new replicas start would reach the old ones only, and a new replica that resolved its aliases
    before the move would serve the old champion until the next reload (seen in CI)."""
    from ray import serve

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(Exception):  # the controller busy with the deploy: ask again
            app = serve.status().applications.get(app_name)
            if app is not None and app.status == "RUNNING":
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.5)


@ray.remote(num_cpus=0, max_restarts=-1)
class ExperimentWatcher:
    """Checks the app's experiment on a thread; after an alias move, the app re-resolves its aliases."""

    def __init__(self, settings: WatchSettings) -> None:
        self.settings = settings
        self.actions: list[str] = []
        self._stop = threading.Event()
        # One loop for the watcher's life: a Serve handle of the high-throughput mode is bound to the loop
        # it was made in, and stops taking the controller's updates once that loop ends.
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True, name="experiment-reload").start()
        threading.Thread(target=self._watch, daemon=True, name="experiment-watch").start()

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.check_seconds):
            try:
                done = check_once(self.settings)
            except Exception as error:  # no feedback table yet, MLflow down...: look again next time
                logger.warning("experiment check failed: %s", error)
                continue
            if done is not None:
                logger.warning("experiment: %s", done)
                self.actions.append(done)
                self._reload()

    def _reload(self) -> None:
        """Every replica running now re-resolves its aliases at once; when the app is being (re)deployed,
        those started meanwhile (which may have resolved them before the move) do once it is RUNNING."""
        app_name = self.settings.app_name
        settled = _wait_until_running(app_name, 0)
        self._reload_replicas()
        if settled:
            return
        if not _wait_until_running(app_name, _RELOAD_WAIT_SECONDS):
            logger.warning("experiment: the app is not RUNNING after %.0f s: reloading now", _RELOAD_WAIT_SECONDS)
        self._reload_replicas()

    def _reload_replicas(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(_reload_app(self.settings.app_name), self._loop).result(timeout=120)
        except Exception as error:  # the replicas also re-resolve on their own at the next redeploy
            logger.warning("experiment: the app did not reload: %s", error)

    def history(self) -> list[str]:
        """What the watcher did, oldest first."""
        return list(self.actions)

    def stop(self) -> None:
        self._stop.set()


def start_watcher(settings: WatchSettings) -> Any:
    """The app's watcher, replacing one a previous deploy started."""
    stop_watcher(settings.app_name)
    return ExperimentWatcher.options(  # type: ignore[attr-defined]
        name=watcher_name(settings.app_name), namespace=STATE_NAMESPACE, lifetime="detached"
    ).remote(settings)


def stop_watcher(app_name: str) -> bool:
    """End the app's watcher, if one runs."""
    try:
        handle = ray.get_actor(watcher_name(app_name), namespace=STATE_NAMESPACE)
    except ValueError:
        return False
    ray.kill(handle, no_restart=True)
    return True


def watcher_history(app_name: str) -> list[str]:
    return list(ray.get(ray.get_actor(watcher_name(app_name), namespace=STATE_NAMESPACE).history.remote()))
