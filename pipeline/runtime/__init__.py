"""Starting and stopping the engines: Java 17, Ray, and Spark inside Ray through RayDP.

``_session`` is the ``Runtime`` context manager (start or join Ray, start Spark, stop both on exit, errors
and signals); ``_detached`` starts and stops a detached Ray head or worker node, ``_attached`` the
cluster a ``serve --detach`` leaves running; ``_serve_mode`` picks Serve's high-throughput mode and finds
its HAProxy; ``_executors`` reserves and awaits Spark's executors within a bound; ``_ports`` finds free ports.
Public beside them: ``java`` (the Java 17 environment every JVM start uses) and ``resources`` (what the
cluster has free).
"""

from pipeline.errors import ClusterError
from pipeline.runtime._attached import DetachedCluster, detached_cluster, stop_detached_cluster
from pipeline.runtime._detached import (
    CURRENT_CLUSTER_FILE,
    DetachedHead,
    start_detached_head,
    start_worker_node,
    stop_detached_head,
)
from pipeline.runtime._ports import free_port
from pipeline.runtime._serve_mode import (
    HIGH_THROUGHPUT_ENVIRONMENT,
    ServeMode,
    haproxy_pids,
    serve_mode,
    stop_haproxy,
)
from pipeline.runtime._session import (
    HEAD_NODE_RESOURCE,
    JAVA17_OPTIONS,
    Runtime,
    dashboard_sign_in_hint,
    prepare_process_environment,
    ray_init_kwargs,
    spark_configs,
    start_spark,
    stop_spark,
    use_head_auth,
)
from pipeline.runtime.java import JavaNotFoundError, JavaRuntime, activate_java, find_java

__all__ = [
    "CURRENT_CLUSTER_FILE",
    "HEAD_NODE_RESOURCE",
    "HIGH_THROUGHPUT_ENVIRONMENT",
    "JAVA17_OPTIONS",
    "ClusterError",
    "DetachedCluster",
    "DetachedHead",
    "JavaNotFoundError",
    "JavaRuntime",
    "Runtime",
    "ServeMode",
    "activate_java",
    "dashboard_sign_in_hint",
    "detached_cluster",
    "find_java",
    "free_port",
    "haproxy_pids",
    "prepare_process_environment",
    "ray_init_kwargs",
    "serve_mode",
    "spark_configs",
    "start_detached_head",
    "start_spark",
    "start_worker_node",
    "stop_detached_cluster",
    "stop_detached_head",
    "stop_haproxy",
    "stop_spark",
    "use_head_auth",
]
