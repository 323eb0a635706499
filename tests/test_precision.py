"""The precision resolver: bfloat16 only where it is native, decided from fake CPU flags and GPUs.

None of these tests depends on the machine they run on: every decision gets its flags and GPU
list passed in (or faked through the environment).
"""

import json
import subprocess
import sys

import pytest

from mnist_cnn import precision
from mnist_cnn.errors import UserError

AMD_AVX2 = {"fpu", "sse4_2", "avx", "avx2", "fma", "f16c"}
INTEL_AMX = AMD_AVX2 | {"avx512f", "avx512bw", "avx512_bf16", "amx_bf16", "amx_tile"}
AVX512_BF16_ONLY = AMD_AVX2 | {"avx512f", "avx512_bf16"}


@pytest.mark.parametrize("flags, expected", [
    (AMD_AVX2, "float32"),
    (AMD_AVX2 | {"avx512f", "avx512bw"}, "float32"),  # AVX-512 without BF16 still emulates
    (INTEL_AMX, "mixed_bfloat16"),
    (AVX512_BF16_ONLY, "float32"),  # measured slower than float32 without AMX (precision.py)
    (AMD_AVX2 | {"amx_bf16"}, "mixed_bfloat16"),
    (set(), "float32"),  # unknown CPU (no /proc/cpuinfo): the safe choice
])
def test_auto_follows_the_cpu_flags(flags, expected):
    assert precision.resolve("auto", flags=flags, gpus=[]) == expected


@pytest.mark.parametrize("gpus, flags, expected", [
    ([(8, 0)], AMD_AVX2, "mixed_bfloat16"),   # A100 decides, not the CPU
    ([(9, 0)], AMD_AVX2, "mixed_bfloat16"),   # H100
    ([(7, 5)], INTEL_AMX, "float32"),         # T4: the GPU does the work and emulates bfloat16
    ([(8, 6), (7, 0)], AMD_AVX2, "float32"),  # mixed GPUs: the weakest decides
])
def test_auto_follows_the_gpus(gpus, flags, expected):
    assert precision.resolve("auto", flags=flags, gpus=gpus) == expected


@pytest.mark.parametrize("asked, expected", [
    ("float32", "float32"), ("mixed_bfloat16", "mixed_bfloat16"), ("bfloat16", "mixed_bfloat16"),
])
def test_explicit_values_are_kept_whatever_the_hardware(asked, expected):
    for flags in (AMD_AVX2, INTEL_AMX):
        assert precision.resolve(asked, flags=flags, gpus=[]) == expected


def test_unknown_precision_is_a_user_error():
    with pytest.raises(UserError, match="unknown precision 'float16'"):
        precision.resolve("float16", flags=AMD_AVX2, gpus=[])


def test_cpuinfo_parsing(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) "
                    "Platinum 8480+\nflags\t\t: fpu avx2 amx_bf16 avx512_bf16\n\n"
                    "processor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n")
    assert precision.cpu_model(info) == "Intel(R) Xeon(R) Platinum 8480+"
    assert precision.cpu_flags(info) == {"fpu", "avx2", "amx_bf16", "avx512_bf16"}
    assert precision.cpu_flags(tmp_path / "missing") == frozenset()


def test_environment_fakes_the_cpu_for_a_whole_process():
    """`MNIST_CNN_CPU_FLAGS` reaches the resolver and the recorded machine facts, in a new process
    that has not imported TensorFlow (the resolver does not need it for the CPU part)."""
    probe = ("import json, sys; from mnist_cnn import precision as p; "
             "print(json.dumps([p.resolve('auto', gpus=[]), p.machine_facts('x'), "
             "'tensorflow' in sys.modules]))")
    for flags, expected in (("avx2 fma amx_bf16", "mixed_bfloat16"), ("avx2 fma", "float32")):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             env={"MNIST_CNN_CPU_FLAGS": flags, "PATH": "/usr/bin:/bin"},
                             check=True, timeout=60).stdout
        policy, facts, tf_loaded = json.loads(out)
        assert policy == expected and not tf_loaded
        assert facts["cpu_flags_faked"] and facts["bf16_native_cpu"] == (expected != "float32")
        assert set(facts["cpu_flags"]) == set(flags.split())


def test_metrics_record_the_machine(tiny_run):
    """metrics.json says what the numbers were measured on: CPU, flags, threads, policy."""
    _, metrics = tiny_run
    machine = metrics["machine"]
    assert machine["policy"] == "float32"  # the tiny test model asks for float32 explicitly
    assert machine["cpu_model"] and machine["cpus"] >= 1
    assert {"intra_op_threads", "inter_op_threads", "cpu_flags", "bf16_native_cpu"} <= set(machine)


# --- `auto` by measurement (issue 25): fake timings, a cache in tmp_path -----------------------

def _timings(f32, bf16, calls):
    def measure():
        calls.append(1)
        return {"float32": f32, "mixed_bfloat16": bf16}
    return measure


@pytest.fixture
def measured(monkeypatch):
    monkeypatch.delenv(precision.AUTO_ENV, raising=False)


@pytest.mark.parametrize("f32, bf16, expected", [
    (7.10, 5.05, "mixed_bfloat16"),  # the AMD EPYC family 26 measurement: bf16 faster
    (10.86, 13.57, "float32"),       # the Intel AVX-512 BF16 one: bf16 slower
    (1.00, 0.97, "float32"),         # within MIN_SPEEDUP: float32 kept
])
def test_auto_picks_the_faster_measured_policy_and_caches_it(tmp_path, measured, f32, bf16, expected):
    calls, cache = [], tmp_path / "c" / "precision.json"
    got = precision.auto_precision(AVX512_BF16_ONLY, [], _timings(f32, bf16, calls), cache)
    assert got == expected and calls == [1] and "measured now" in precision.explain()
    entry = json.loads(cache.read_text())[precision.machine_key(AVX512_BF16_ONLY)]
    assert entry["choice"] == expected and entry["seconds"]["float32"] == f32
    # the next run reads the cache and measures nothing
    again = precision.auto_precision(AVX512_BF16_ONLY, [], _timings(bf16, f32, calls), cache)
    assert again == expected and calls == [1] and "cached" in precision.explain()
    # another CPU (other flags) is measured on its own
    other = precision.auto_precision(INTEL_AMX, [], _timings(f32, bf16, calls), cache)
    assert other == expected and calls == [1, 1] and len(json.loads(cache.read_text())) == 2


def test_auto_measures_nothing_where_the_answer_is_certain(tmp_path, measured):
    calls = []
    assert precision.auto_precision(AMD_AVX2, [], _timings(1, 0.1, calls),
                                    tmp_path / "p.json") == "float32"
    assert precision.auto_precision(AMD_AVX2, [(9, 0)], _timings(1, 0.1, calls),
                                    tmp_path / "p.json") == "mixed_bfloat16"
    assert calls == [] and not (tmp_path / "p.json").exists()


def test_auto_falls_back_to_the_flag_rule(tmp_path, monkeypatch, measured):
    calls = []
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")  # the cache's folder cannot be made under a file
    for flags, rule in ((INTEL_AMX, "mixed_bfloat16"), (AVX512_BF16_ONLY, "float32")):
        got = precision.auto_precision(flags, [], _timings(1, 0.1, calls), blocked / "p.json")
        assert got == rule and "not writable" in precision.explain()
    monkeypatch.setenv(precision.AUTO_ENV, "flags")  # asked for (the test suite's setting)
    assert precision.auto_precision(AVX512_BF16_ONLY, [], _timings(1, 0.1, calls),
                                    tmp_path / "p.json") == "float32"
    assert calls == []


def test_a_damaged_cache_is_measured_again(tmp_path, measured):
    cache, calls = tmp_path / "precision.json", []
    cache.write_text("{not json")
    assert precision.auto_precision(AVX512_BF16_ONLY, [], _timings(2, 1, calls), cache) == "mixed_bfloat16"
    assert calls == [1] and json.loads(cache.read_text())


def test_time_policies_times_both_on_the_real_network():
    seconds = precision.time_policies(batch_size=8, steps=1, rounds=1)
    assert set(seconds) == {"float32", "mixed_bfloat16"}
    assert all(0 < s < 60 for s in seconds.values())
