"""The `lopt` command line: dispatches a command to its Hydra app."""
import logging
import os

# XLA:CPU's concurrency-optimized scheduler can deadlock the compiled LSTM of lm1b_lstm (the call
# waits forever at 0% CPU on 2 cores); set before jax is imported anywhere in the process.
_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler=false"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FLAG}".strip()


class _DropNoise(logging.Filter):
    """Drops log records that only describe lopt's own business in library terms: TFDS noticing an
    unprepared dataset directory (lopt says so in its own error)."""

    NOISE = ("Variant folder ",)  # TFDS scanning data.dir: "Variant folder <dir> has no dataset_info.json"

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record whose arguments do not fit its format: not ours to judge
            return True
        return not any(message.startswith(noise) for noise in self.NOISE)


_DROP_NOISE = _DropNoise()


def quiet_library_logging() -> None:
    """Keep libraries' INFO chatter off the terminal (Hydra's job logging shows INFO): JAX probing
    backends it does not find ("Unable to initialize backend 'tpu'"), orbax and TFDS progress, and
    TFDS's warning about an unprepared dataset directory. Idempotent; call before JAX starts."""
    try:
        import absl.logging  # noqa: F401  # absl's logger class must own the 'absl' logger, so absl comes first
    except ImportError:
        pass
    for name in ("absl", "jax._src.xla_bridge", "tensorflow_datasets", "tensorflow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("absl").addFilter(_DROP_NOISE)  # a filter object is added once


quiet_library_logging()  # also in launcher workers, which import lopt_cli to unpickle a Job


def enable_compilation_cache() -> None:
    """Reuse XLA executables across runs (a rerun or the jobs of a sweep skip recompiling).
    $LOPT_COMPILATION_CACHE picks the directory; set it empty to turn the cache off. Programs that
    compile in under 1 s are not stored (JAX's $JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS, if set,
    wins). Called by `lopt` before Hydra starts and again by every job (lopt_cli.job), since
    launcher workers are fresh processes that inherit the environment but not JAX's config."""
    cache = os.environ.get("LOPT_COMPILATION_CACHE", os.path.expanduser("~/.cache/lopt/xla"))
    if cache:
        import jax

        jax.config.update("jax_compilation_cache_dir", cache)
        if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
