"""Which arithmetic to use on this machine: one resolver for training, OIPs, experiments, bench.

bfloat16 halves the time of a step where the hardware has bfloat16 matrix units (Intel AMX on
the CPU, compute capability 8.0+ on an NVIDIA GPU). Everywhere else it is *slower* than
float32: emulated, about 7x on a 2-core AMD EPYC with AVX2 only; and on an Intel Xeon with
AVX-512 BF16 but no AMX, where only the dot-product instructions exist, 1.25x and 1.39x slower
in two runs (`bench_throughput`, 2026-12-01: float32 10.86 / 13.72 s per epoch, mixed_bfloat16
13.57 / 19.10 s). So `auto` picks `mixed_bfloat16` only where AMX (or such a GPU) is there.

A rule on flags alone is not enough: on an AMD EPYC (family 26) with AVX-512 BF16 and no AMX,
mixed_bfloat16 measured *faster* (5.05 vs 7.10 s per epoch, 2026-12-02). So where the CPU has
any bfloat16 instructions (`avx512_bf16` or `amx_bf16`) and no GPU does the work, `auto` times
a few training steps of the series' network in both policies once (a few seconds,
`time_policies`) and caches the faster one per machine (CPU model and flags) in
`$XDG_CACHE_HOME/mnist_cnn/precision.json` (default ~/.cache); bfloat16 must be at least
`MIN_SPEEDUP` faster to be chosen. Where the cache cannot be written, or
`MNIST_CNN_AUTO_PRECISION=flags` asks for it (the test suite does), the flag rule decides.
`explain()` says what the last `auto` picked and why; training prints it.

Importing this module is cheap (no TensorFlow): the CPU is read from /proc/cpuinfo, and the
GPUs are asked for only when `auto` must decide and none were given. Tests pass fake flag sets
and GPU lists; `MNIST_CNN_CPU_FLAGS="avx2 amx_bf16"` fakes the CPU for a whole process.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from pathlib import Path

CHOICES = ("auto", "mixed_bfloat16", "float32")
ALIASES = {"bfloat16": "mixed_bfloat16"}  # the OIP command's historical spelling
NATIVE_BF16_CPU_FLAGS = ("amx_bf16",)  # avx512_bf16 alone: slower than float32 (above)
REPORTED_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
MIN_BF16_GPU_CAPABILITY = (8, 0)  # Ampere
FLAGS_ENV = "MNIST_CNN_CPU_FLAGS"
AUTO_ENV = "MNIST_CNN_AUTO_PRECISION"  # "flags": decide by the flag rule, never measure
ANY_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # bfloat16 instructions of some kind
MIN_SPEEDUP = 1.05  # bfloat16 must beat float32 by 5% per step: within that, keep float32
_last_reason = ""


def _read_cpuinfo(path="/proc/cpuinfo") -> tuple[str, frozenset]:
    """(model name, flags) of the first CPU listed in `path`; ("", {}) where it is unreadable."""
    model, flags = "", frozenset()
    try:
        with open(path) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not model:
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = frozenset(value.split())
                if model and flags:
                    break
    except OSError:
        pass
    return model, flags


def cpu_flags(path="/proc/cpuinfo") -> frozenset:
    """The CPU's feature flags; `$MNIST_CNN_CPU_FLAGS` (space-separated) replaces them."""
    if FLAGS_ENV in os.environ:
        return frozenset(os.environ[FLAGS_ENV].split())
    return _read_cpuinfo(path)[1]


def cpu_model(path="/proc/cpuinfo") -> str:
    """The CPU's model name (e.g. "AMD EPYC"), or what `platform` knows where /proc is absent."""
    return _read_cpuinfo(path)[0] or platform.processor() or platform.machine()


def gpu_capabilities() -> list[tuple[int, int]]:
    """Compute capabilities of the visible GPUs (imports TensorFlow; [] on a CPU-only machine)."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        found.append(tuple(capability) if capability else (0, 0))
    return found


def bf16_is_native(flags=None, gpus=None) -> bool:
    """Whether bfloat16 arithmetic runs natively (not emulated) on this machine.

    Parameters
    ----------
    flags : iterable of str, optional
        CPU flags (default: this CPU's, see `cpu_flags`).
    gpus : list of (major, minor), optional
        Compute capabilities of the GPUs (default: ask TensorFlow). Where GPUs exist they do the
        work, so they alone decide.
    """
    gpus = gpu_capabilities() if gpus is None else list(gpus)
    if gpus:
        return all(tuple(c) >= MIN_BF16_GPU_CAPABILITY for c in gpus)
    flags = cpu_flags() if flags is None else frozenset(flags)
    return any(f in flags for f in NATIVE_BF16_CPU_FLAGS)


def resolve(precision: str = "auto", flags=None, gpus=None) -> str:
    """The Keras dtype policy for `precision`: "mixed_bfloat16" or "float32".

    Parameters
    ----------
    precision : str
        "auto" (bfloat16 where native, else float32), "mixed_bfloat16" (alias "bfloat16") or
        "float32". Explicit values are returned as they are, whatever the hardware.
    flags, gpus :
        Fakes for tests, as in `bf16_is_native`.

    Returns
    -------
    str
    """
    precision = ALIASES.get(precision, precision)
    if precision not in CHOICES:
        from mnist_cnn.errors import UserError

        raise UserError(f"unknown precision {precision!r}; choose {', '.join(CHOICES)}")
    if precision != "auto":
        return precision
    if flags is not None or gpus is not None:  # fakes: the flag rule, nothing measured
        return _by_flags(flags, gpus)
    return auto_precision()


def _by_flags(flags=None, gpus=None, why="") -> str:
    global _last_reason
    choice = "mixed_bfloat16" if bf16_is_native(flags, gpus) else "float32"
    _last_reason = why or ("bfloat16 units (AMX or an Ampere+ GPU) found" if choice != "float32"
                           else "no bfloat16 units: bfloat16 would be emulated or slower")
    return choice


def explain() -> str:
    """Why the last `auto` resolution picked what it picked (one line; "" before any)."""
    return _last_reason


def cache_file() -> Path:
    """Where `auto`'s measured choices are kept: $XDG_CACHE_HOME/mnist_cnn/precision.json."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mnist_cnn" / "precision.json"


def machine_key(flags=None) -> str:
    """The cache key of this machine: a digest of its CPU model and flags."""
    flags = cpu_flags() if flags is None else frozenset(flags)
    return hashlib.sha256((cpu_model() + "|" + " ".join(sorted(flags))).encode()).hexdigest()[:16]


def choose(seconds: dict) -> str:
    """The policy to use given seconds per step {"float32": s, "mixed_bfloat16": s}."""
    return "mixed_bfloat16" if seconds["float32"] >= MIN_SPEEDUP * seconds["mixed_bfloat16"] \
        else "float32"


def auto_precision(flags=None, gpus=None, measure=None, cache=None) -> str:
    """`auto` on this machine: the flag rule where it is certain, else a cached measurement.

    Parameters
    ----------
    flags, gpus : fakes for tests (default: this machine's).
    measure : callable() -> {"float32": s, "mixed_bfloat16": s}, seconds per training step
        (default `time_policies`); tests pass fake timings.
    cache : path of the cache file (default `cache_file()`).

    Returns
    -------
    str, "mixed_bfloat16" or "float32"; `explain()` says why.
    """
    global _last_reason
    gpus = gpu_capabilities() if gpus is None else list(gpus)
    flags = cpu_flags() if flags is None else frozenset(flags)
    if gpus:
        return _by_flags(flags, gpus, "the GPU decides: " + ("bfloat16 native" if bf16_is_native(
            flags, gpus) else "bfloat16 not native"))
    if not any(f in flags for f in ANY_BF16_CPU_FLAGS):
        return _by_flags(flags, gpus, "no bfloat16 instructions on this CPU: float32")
    if os.environ.get(AUTO_ENV) == "flags":
        return _by_flags(flags, gpus)
    cache = Path(cache) if cache is not None else cache_file()
    key = machine_key(flags)
    known = _read_cache(cache)
    entry = known.get(key)
    if isinstance(entry, dict) and entry.get("choice") in ("float32", "mixed_bfloat16"):
        _last_reason = (f"measured on this CPU on {entry.get('date', '?')}: float32 "
                        f"{entry['seconds']['float32'] * 1e3:.1f} ms, bfloat16 "
                        f"{entry['seconds']['mixed_bfloat16'] * 1e3:.1f} ms per step "
                        f"(cached in {cache})")
        return entry["choice"]
    try:  # only measure what can be kept: a machine that cannot cache uses the flag rule
        cache.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(cache.parent, os.W_OK):
            raise PermissionError(cache.parent)
    except OSError:
        return _by_flags(flags, gpus, f"cache {cache} not writable: the flag rule decides ("
                         + ("AMX found" if bf16_is_native(flags, []) else "no AMX") + ")")
    seconds = (measure or time_policies)()
    choice = choose(seconds)
    known[key] = {"choice": choice, "cpu_model": cpu_model(),
                  "seconds": {k: round(float(v), 6) for k, v in seconds.items()},
                  "date": time.strftime("%Y-%m-%d")}
    try:
        from mnist_cnn.fileio import write_json

        write_json(cache, known)
        where = f"cached in {cache}"
    except OSError:
        where = f"not cached: {cache} could not be written"
    _last_reason = (f"measured now: float32 {seconds['float32'] * 1e3:.1f} ms, bfloat16 "
                    f"{seconds['mixed_bfloat16'] * 1e3:.1f} ms per step ({where})")
    return choice


def _read_cache(path: Path) -> dict:
    """The cache's entries; {} where it is missing or damaged (it is then measured again)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def time_policies(batch_size: int = 64, steps: int = 12, rounds: int = 2) -> dict:
    """Seconds per training step of the series' network in each policy (imports TensorFlow).

    Random images of `batch_size`, SGD with momentum, `steps` timed steps after a compiled
    warm-up, the policies alternated `rounds` times (the best round counts: other work on the
    cores only ever slows a round down). About 3-6 s on 2 cores.
    """
    import numpy as np

    import keras
    from mnist_cnn.model import build_model

    rng = np.random.default_rng(0)
    models, data = {}, {}
    for policy in ("float32", "mixed_bfloat16"):
        model = build_model(l2=5e-4, dtype_policy=policy)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss="sparse_categorical_crossentropy")
        shape = (batch_size, *model.input_shape[1:])
        data[policy] = (rng.random(shape, dtype=np.float32),
                        rng.integers(0, model.output_shape[-1], batch_size))
        for _ in range(3):
            model.train_on_batch(*data[policy])  # traced and warmed up outside the timing
        models[policy] = model
    best = {policy: float("inf") for policy in models}
    for _ in range(rounds):
        for policy, model in models.items():
            started = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(*data[policy])
            best[policy] = min(best[policy], (time.perf_counter() - started) / steps)
    return best


def machine_facts(policy: str | None = None) -> dict:
    """What a measurement depends on: CPU model and flags, cores, threads, the resolved policy.

    Recorded in metrics.json and bench/results.json beside every number.
    """
    flags = cpu_flags()
    facts = {
        "cpu_model": cpu_model(),
        "cpu_flags": [f for f in REPORTED_CPU_FLAGS if f in flags],
        "bf16_native_cpu": any(f in flags for f in NATIVE_BF16_CPU_FLAGS),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
    }
    if FLAGS_ENV in os.environ:
        facts["cpu_flags_faked"] = True
    import sys

    if "tensorflow" in sys.modules:  # thread pools are TensorFlow's (0 = its default, all cores)
        import tensorflow as tf

        facts["intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        facts["inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
        facts["gpus"] = [list(c) for c in gpu_capabilities()]
    if policy is not None:
        facts["policy"] = policy
    return facts
