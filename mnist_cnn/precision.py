"""Which arithmetic to use on this machine: one resolver for training, OIPs, experiments, bench.

bfloat16 halves the time of a step where the hardware has bfloat16 matrix units (Intel AMX on
the CPU, compute capability 8.0+ on an NVIDIA GPU). Everywhere else it is *slower* than
float32: emulated, about 7x on a 2-core AMD EPYC with AVX2 only; and on an Intel Xeon with
AVX-512 BF16 but no AMX, where only the dot-product instructions exist, 1.25x and 1.39x slower
in two runs (`bench_throughput`, 2026-12-01: float32 10.86 / 13.72 s per epoch, mixed_bfloat16
13.57 / 19.10 s). So `auto` picks `mixed_bfloat16` only where AMX (or such a GPU) is there.

Importing this module is cheap (no TensorFlow): the CPU is read from /proc/cpuinfo, and the
GPUs are asked for only when `auto` must decide and none were given. Tests pass fake flag sets
and GPU lists; `MNIST_CNN_CPU_FLAGS="avx2 amx_bf16"` fakes the CPU for a whole process.
"""

from __future__ import annotations

import os
import platform

CHOICES = ("auto", "mixed_bfloat16", "float32")
ALIASES = {"bfloat16": "mixed_bfloat16"}  # the OIP command's historical spelling
NATIVE_BF16_CPU_FLAGS = ("amx_bf16",)  # avx512_bf16 alone: slower than float32 (above)
REPORTED_CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
MIN_BF16_GPU_CAPABILITY = (8, 0)  # Ampere
FLAGS_ENV = "MNIST_CNN_CPU_FLAGS"


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
    return "mixed_bfloat16" if bf16_is_native(flags, gpus) else "float32"


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
