"""Starting and stopping the engines: Java 17, Ray, and Spark inside Ray through RayDP."""

from pipeline.runtime._detached import (
    ClusterError,
    DetachedHead,
    free_port,
    start_detached_head,
    stop_detached_head,
    use_head_auth,
)
from pipeline.runtime._java import JavaNotFoundError, JavaRuntime, activate_java, find_java
from pipeline.runtime._session import (
    JAVA17_OPTIONS,
    Runtime,
    prepare_process_environment,
    ray_init_kwargs,
    spark_configs,
    start_spark,
    stop_spark,
)

__all__ = [
    "JAVA17_OPTIONS",
    "ClusterError",
    "DetachedHead",
    "JavaNotFoundError",
    "JavaRuntime",
    "Runtime",
    "activate_java",
    "find_java",
    "free_port",
    "prepare_process_environment",
    "ray_init_kwargs",
    "spark_configs",
    "start_detached_head",
    "start_spark",
    "stop_detached_head",
    "stop_spark",
    "use_head_auth",
]
