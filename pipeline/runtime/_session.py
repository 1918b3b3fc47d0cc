"""The one place that starts (and always stops) Ray and Spark-on-Ray."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from pipeline._console import Console
from pipeline.config import PipelineConfig, RayConfig, SparkConfig
from pipeline.errors import ClusterError
from pipeline.runtime._executors import await_executors, release_executors, reserve_executors
from pipeline.runtime._ports import free_port, port_is_free, port_turn
from pipeline.runtime._serve_mode import ServeMode, apply_serve_mode, serve_mode, stop_haproxy
from pipeline.runtime.java import JavaRuntime, activate_java, find_java

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Java 17 closes these packages; Spark and RayDP's app master reflect into them (STACK.md).
_OPENED_PACKAGES = (
    "java.lang",
    "java.lang.invoke",
    "java.io",
    "java.net",
    "java.nio",
    "java.math",
    "java.text",
    "java.util",
    "java.util.concurrent",
    "java.util.concurrent.atomic",
    "sun.nio.ch",
    "sun.nio.cs",
    "sun.security.action",
    "sun.util.calendar",
)
JAVA17_OPTIONS = " ".join(
    ["-XX:+IgnoreUnrecognizedVMOptions", *(f"--add-opens=java.base/{p}=ALL-UNNAMED" for p in _OPENED_PACKAGES)]
)
_JAVA_OPTION_KEYS = (
    "spark.driver.extraJavaOptions",
    "spark.executor.extraJavaOptions",
    "spark.ray.raydp_app_master.extraJavaOptions",
)
# Ray's resource of the head node. The Spark driver's side (RayDP's master and app master, which both read
# this setting, and a sweep's Spark actor) is placed there: a worker node lost then costs executors
# (replaced) and trials (retried), not the Spark application.
HEAD_NODE_RESOURCE = "node:__internal_head__"
# Defaults the user may override in spark.configs.
_DEFAULT_SPARK_CONFIGS: dict[str, str] = {
    "spark.ui.showConsoleProgress": "true",
    "spark.sql.session.timeZone": "UTC",
    f"spark.ray.raydp_spark_master.actor.resource.{HEAD_NODE_RESOURCE}": "0.001",
    # Given any resource, RayDP holds a whole CPU for its master (idle bookkeeping) unless told otherwise.
    "spark.ray.raydp_spark_master.actor.resource.CPU": "0",
}
# Always set: delta-rs cannot read back the INT96 timestamps Spark writes by default.
_REQUIRED_SPARK_CONFIGS: dict[str, str] = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def spark_configs(spark: SparkConfig, local: bool) -> dict[str, str]:
    """Every Spark setting RayDP is started with: defaults, the user's, then what must hold."""
    merged = dict(_DEFAULT_SPARK_CONFIGS)
    if local:
        # Bind the driver (and so the Spark UI) to loopback: secure by default on a local cluster.
        merged["spark.driver.bindAddress"] = "127.0.0.1"
        merged["spark.driver.host"] = "127.0.0.1"
    merged.update({key: _spark_value(value) for key, value in spark.configs.items()})
    for key in _JAVA_OPTION_KEYS:
        merged[key] = f"{merged[key]} {JAVA17_OPTIONS}" if key in merged else JAVA17_OPTIONS
    merged.update(_REQUIRED_SPARK_CONFIGS)
    return merged


def _spark_value(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def start_spark(spark_config: SparkConfig, local: bool, extra: dict[str, str] | None = None) -> SparkSession:
    """Start this process's one RayDP Spark application (Ray must be initialised, Java 17 prepared)."""
    import raydp

    if local:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    configs = spark_configs(spark_config, local=local)
    configs.update(extra or {})
    group = reserve_executors(spark_config)  # RayDP's own wait for it has no end
    try:
        spark = raydp.init_spark(
            app_name=spark_config.app_name,
            num_executors=spark_config.num_executors,
            executor_cores=spark_config.executor_cores,
            executor_memory=spark_config.executor_memory,
            placement_group=group,
            configs=configs,
        )
        spark.sparkContext.setLogLevel("WARN")
        await_executors(spark, spark_config, configs)
    except BaseException:
        stop_spark()
        raise
    return spark


# What Ray says when a new node's raylet died while starting: on a loaded 2-core machine (2026-12-07, CPU
# probe 2.2-2.5 s) it gave up waiting for its metrics agent's port file ("Timed out waiting for file
# .../metrics_agent_port_..."), a wait no setting of Ray 2.60 lengthens. A new local start is tried again,
# as start_detached_head does for `ray start`.
NODE_START_TIMED_OUT = "The current node timed out during startup"
LOCAL_START_ATTEMPTS = 3


def init_with_retries(
    init: Callable[..., Any],
    shutdown: Callable[[], None],
    kwargs: dict[str, Any],
    attempts: int,
    say: Callable[[str], None],
) -> Any:
    """``init(**kwargs)``, tried again (after ``shutdown``, which stops what the failed start left) while it
    fails only because the new node timed out starting, at most ``attempts`` times."""
    for attempt in range(1, attempts + 1):
        try:
            return init(**kwargs)
        except Exception as error:
            if NODE_START_TIMED_OUT not in str(error) or attempt == attempts:
                raise
            shutdown()
            say(f"Ray's node timed out starting (a busy machine?): trying again ({attempt + 1} of {attempts})")
    raise AssertionError("unreachable: the last attempt returns or raises")


def stop_spark() -> None:
    """Stop this process's Spark application and free its executors' placement group."""
    import raydp

    raydp.stop_spark()
    release_executors()


def prepare_process_environment(java: JavaRuntime) -> None:
    """Environment every process started from here inherits: Java 17 and this interpreter for PySpark."""
    activate_java(java)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable


def check_head_answers(address: str, timeout: float) -> None:
    """ClusterError unless something accepts a connection at the head's address within ``timeout``: Ray's
    own join retries for ever when nothing listens there (seen: over 5 minutes, no message)."""
    if address == "auto":  # Ray finds the machine's current cluster, or says at once that there is none
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            return
    except OSError as error:
        reason = error.strerror or type(error).__name__
    raise ClusterError(
        f"ray.address = {address!r}: no Ray head answered there within ray.connect_timeout_s = {timeout:g} s "
        f"({reason}); start one with `ray start --head`, or give the address it printed"
    )


def use_head_auth() -> None:
    """Token authentication, as ``ray start`` runs the head (Ray 2.60), unless the user chose otherwise.

    A client sends the token (``~/.ray/auth_token``) only when it is in token mode itself, and Ray reads
    the mode once, when it is imported: without this, ``ray.init(address=...)`` to the detached head
    fails with "InvalidAuthToken". Ray's own switch (what a local ``ray.init`` does) sets the variable
    for this process and its children and refreshes Ray's cached config.
    """
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def ray_init_kwargs(ray_config: RayConfig) -> dict[str, Any]:
    """Arguments for ``ray.init``: a local cluster gets resources and dashboard settings, a remote one not."""
    kwargs: dict[str, Any] = {
        "namespace": ray_config.namespace,
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    if ray_config.address is not None:
        kwargs["address"] = ray_config.address
        return kwargs
    kwargs.update(
        address="local",  # always a new cluster: never attach by accident to one found on the machine
        include_dashboard=ray_config.dashboard,
        dashboard_host=ray_config.dashboard_host,
        dashboard_port=ray_config.dashboard_port,
    )
    if ray_config.num_cpus is not None:
        kwargs["num_cpus"] = ray_config.num_cpus
    return kwargs


def dashboard_failure(kwargs: dict[str, Any], message: str) -> str:
    """One line for a local Ray whose dashboard did not start: where it was to listen, Ray's reason (the last
    line of its log that names one), and what to change."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    reasons = [line for line in lines if "error" in line.lower() or "already in use" in line]
    reason = (reasons or lines or ["no reason given"])[-1]
    where = f"{kwargs.get('dashboard_host')}:{kwargs.get('dashboard_port')}"
    return (
        f"ray: the dashboard did not start on {where}: {reason}; set ray.dashboard_port to a free port, "
        "or ray.dashboard: false"
    )


def dashboard_sign_in_hint() -> str:
    """How to open a dashboard that asks for a token (Ray 2.60 runs local clusters with token auth)."""
    if os.environ.get("RAY_AUTH_MODE", "token") == "disabled":
        return ""
    return "(it asks for a token: paste the output of `ray get-auth-token`)"


class Runtime:
    """Context manager owning Ray and (optionally) a RayDP Spark session for one job.

    It stops what it started on normal exit, on errors, on Ctrl-C and on SIGTERM. When this process is
    connected to Ray already (``ray.init`` in a notebook, a Ray Job's driver) it uses that connection and
    leaves it open.
    """

    def __init__(self, config: PipelineConfig, *, start_spark: bool = True, console: Console | None = None):
        self.config = config
        self.start_spark = start_spark
        self.console = console or Console()
        self.java: JavaRuntime | None = None
        self.dashboard_url: str | None = None
        self.spark_ui_url: str | None = None
        self._spark: SparkSession | None = None
        self._ray_started = False
        self._serve_mode: ServeMode | None = None
        self._environment_before: dict[str, str | None] = {}
        self._previous_sigterm: Callable[[int, FrameType | None], Any] | int | None = None

    @property
    def spark(self) -> SparkSession:
        if self._spark is None:
            raise RuntimeError("Spark is not running: create Runtime(..., start_spark=True) and enter it")
        return self._spark

    def __enter__(self) -> Runtime:
        self._install_sigterm_handler()
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _start(self) -> None:
        import ray

        self.java = find_java()
        prepare_process_environment(self.java)
        self.console.step(f"Java {self.java.version} from {self.java.origin} ({self.java.home})")
        ray_config = self.config.ray
        if ray.is_initialized():  # a notebook's or a Ray Job's own connection: used, and left open after
            self.console.step("Using this process's Ray connection (ray.init was called before)")
            if self.start_spark:
                self._start_spark(local=ray_config.address is None)
            return
        where = ray_config.address or "a local cluster"
        if ray_config.address is None:  # a head started here inherits Serve's mode from this environment
            self._serve_mode = serve_mode(self.config.serving.high_throughput)
            self._environment_before = {key: os.environ.get(key) for key in self._serve_mode.environment}
            apply_serve_mode(self._serve_mode)
        else:  # a cluster from `ray start` (or KubeRay) asks for its token: send it when we have one
            check_head_answers(ray_config.address, ray_config.connect_timeout_s)
            use_head_auth()
        kwargs = ray_init_kwargs(ray_config)
        wanted = ray_config.dashboard_port
        # The dashboard's port in turns with other jobs of ours on this machine: the check and Ray's bind of it.
        turn = port_turn(wanted) if kwargs.get("include_dashboard") else contextlib.nullcontext()
        with turn, self.console.timed(f"Starting Ray ({where})"):
            if kwargs.get("include_dashboard") and not port_is_free(ray_config.dashboard_host, wanted):
                # Another job's Ray has it (two jobs at once): Ray's dashboard would wait a minute and fail the
                # start. This job's dashboard takes a free port instead, and says which.
                kwargs["dashboard_port"] = free_port()
                self.console.step(
                    f"ray.dashboard_port = {wanted} is taken (another Ray on this machine?): this "
                    f"job's dashboard listens on port {kwargs['dashboard_port']}"
                )
            try:
                attempts = LOCAL_START_ATTEMPTS if ray_config.address is None else 1
                context = init_with_retries(ray.init, ray.shutdown, kwargs, attempts, self.console.step)
            except Exception as error:
                if "dashboard" not in str(error):
                    raise
                raise ClusterError(dashboard_failure(kwargs, str(error))) from error
        self._ray_started = True
        dashboard = getattr(context, "dashboard_url", None)
        self.dashboard_url = f"http://{dashboard}" if dashboard else None
        if self.dashboard_url:
            self.console.step(f"Ray dashboard: {self.dashboard_url} {dashboard_sign_in_hint()}")
        if self.start_spark:
            self._start_spark(local=ray_config.address is None)

    def _start_spark(self, local: bool) -> None:
        spark_config = self.config.spark
        with self.console.timed(
            f"Starting Spark in Ray ({spark_config.num_executors} executor(s) x "
            f"{spark_config.executor_cores} core(s), {spark_config.executor_memory})"
        ):
            self._spark = start_spark(spark_config, local=local)
        self.spark_ui_url = self._spark.sparkContext.uiWebUrl
        if self.spark_ui_url:
            self.console.step(f"Spark UI: {self.spark_ui_url}")

    def _stop(self) -> None:
        try:
            if self._spark is not None:
                self._spark = None
                stop_spark()
        finally:
            if self._ray_started:
                import ray

                self._ray_started = False
                ray.shutdown()
            if self._serve_mode is not None:
                stop_haproxy(self._serve_mode.haproxy_dir)
                self._serve_mode = None
                for key, value in self._environment_before.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
            self._restore_sigterm_handler()

    def _install_sigterm_handler(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        self._previous_sigterm = signal.getsignal(signal.SIGTERM)

        def _exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
            raise SystemExit(128 + signum)

        signal.signal(signal.SIGTERM, _exit_on_sigterm)

    def _restore_sigterm_handler(self) -> None:
        if self._previous_sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous_sigterm)
            self._previous_sigterm = None
