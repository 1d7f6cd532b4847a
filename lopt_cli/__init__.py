"""The `lopt` command line: dispatches a command to its Hydra app."""
import os

# XLA:CPU's concurrency-optimized scheduler can deadlock the compiled LSTM of lm1b_lstm (the call
# waits forever at 0% CPU on 2 cores); set before jax is imported anywhere in the process.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()


def enable_compilation_cache() -> None:
    """Reuse XLA executables across runs (a rerun or the jobs of a sweep skip recompiling).
    $LOPT_COMPILATION_CACHE picks the directory; set it empty to turn the cache off."""
    cache = os.environ.get("LOPT_COMPILATION_CACHE", os.path.expanduser("~/.cache/lopt/xla"))
    if cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
