"""System profile and power readers against fixture trees shaped like the system files a
Jetson (JetPack 4 and 6) and a Linux x86 host provide."""

from __future__ import annotations

import time

import pytest

from edgeseg.bench import power, sysinfo


def write(root, rel, text):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


@pytest.fixture
def orin(tmp_path):
    write(tmp_path, "proc/cpuinfo", "processor\t: 0\nFeatures\t: fp asimd asimddp i8mm\n"
          "processor\t: 1\nFeatures\t: fp asimd asimddp i8mm\n")
    write(tmp_path, "proc/meminfo", "MemTotal:       7620000 kB\n")
    write(tmp_path, "etc/nv_tegra_release",
          "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n")
    write(tmp_path, "proc/device-tree/model", "NVIDIA Jetson Orin Nano Developer Kit\x00")
    write(tmp_path, "var/lib/nvpmodel/status", "pmode:0001 fmode:quiet\n")
    write(tmp_path, "etc/nvpmodel.conf", "< POWER_MODEL ID=0 NAME=15W >\nCPU_ONLINE CORE_0 1\n"
          "< POWER_MODEL ID=1 NAME=7W >\nCPU_ONLINE CORE_0 1\n")
    for i, khz in enumerate((729600, 1510400)):
        write(tmp_path, f"sys/devices/system/cpu/cpu{i}/cpufreq/scaling_cur_freq", f"{khz}\n")
    write(tmp_path, "sys/devices/platform/bus@0/17000000.gpu/devfreq/17000000.gpu/cur_freq",
          "624750000\n")
    hw = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    for k, (label, mv, ma) in enumerate([("VDD_IN", 5000, 1200), ("VDD_CPU_GPU_CV", 5000, 400),
                                         ("VDD_SOC", 5000, 300)], start=1):
        write(tmp_path, f"{hw}/in{k}_label", label + "\n")
        write(tmp_path, f"{hw}/in{k}_input", f"{mv}\n")
        write(tmp_path, f"{hw}/curr{k}_input", f"{ma}\n")
    write(tmp_path, f"{hw}/in7_label", "sum of shunt voltages\n")
    return tmp_path


def test_jetson_profile_from_system_files(orin):
    p = sysinfo.system_profile(threads=2, root=orin)
    j = p["jetson"]
    assert j["model"] == "NVIDIA Jetson Orin Nano Developer Kit"
    assert (j["l4t"], j["jetpack"]) == ("36.4.3", "6.2")
    assert j["nvpmodel"] == {"id": 1, "name": "7W"}
    assert j["cpu_mhz"] == [729, 1510] and j["gpu_mhz"] == 624
    assert p["cpu"]["flags"] == ["asimd", "asimddp", "i8mm"] and p["cpu"]["logical_cores"] == 2
    assert p["memory_mib"] == 7441 and "gpu" not in p
    assert sysinfo.device_name(p) == "nvidia-jetson-orin-nano-developer-kit-7w"


def test_unknown_l4t_gives_no_jetpack_guess():
    assert sysinfo.jetpack_for_l4t("36.9.1") is None
    assert sysinfo.jetpack_for_l4t("35.4.1") == "5.1.2"
    assert sysinfo.jetpack_for_l4t(None) is None


def test_x86_host_profile(tmp_path):
    write(tmp_path, "proc/cpuinfo", "processor\t: 0\nmodel name\t: AMD EPYC 9R14\n"
          "flags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni avx512_bf16 aes\n")
    p = sysinfo.system_profile(root=tmp_path)
    assert p["cpu"]["model"] == "AMD EPYC 9R14"
    assert p["cpu"]["flags"] == ["avx", "avx2", "avx512_bf16", "avx512_vnni", "avx512f", "fma",
                                 "sse4_2"]
    assert "jetson" not in p and "gpu" not in p
    assert p["versions"]["python"] and "numpy" in p["versions"]
    assert sysinfo.device_name(p) == "amd-epyc-9r14"


def test_this_machine_profile_reads_real_files():
    p = sysinfo.system_profile(threads=1)
    assert p["cpu"]["logical_cores"] >= 1 and p["memory_mib"] > 0
    assert p["versions"]["edgeseg"]


def test_hwmon_rails_and_energy_per_frame(orin):
    sampler = power.PowerSampler(root=orin, interval_s=0.01)
    assert sampler.source == "jetson-ina3221"
    assert sampler.read_mw() == {"VDD_IN": 6000.0, "VDD_CPU_GPU_CV": 2000.0, "VDD_SOC": 1500.0}
    with sampler:
        time.sleep(0.1)
    s = sampler.summary(frames=10)
    assert s["total_rail"] == "VDD_IN" and s["mean_w"] == pytest.approx(6.0)
    seconds = sampler._t1 - sampler._t0
    assert s["energy_per_frame_mj"] == pytest.approx(6000.0 * seconds / 10, rel=1e-3)


def test_iio_rails_of_jetpack4(tmp_path):
    d = "sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    write(tmp_path, f"{d}/rail_name_0", "VDD_IN\n")
    write(tmp_path, f"{d}/in_power0_input", "4321\n")
    write(tmp_path, f"{d}/rail_name_1", "VDD_GPU\n")
    write(tmp_path, f"{d}/in_power1_input", "800\n")
    sampler = power.PowerSampler(root=tmp_path)
    assert sampler.read_mw() == {"VDD_IN": 4321.0, "VDD_GPU": 800.0}


def test_no_sensor_means_no_power_figures(tmp_path):
    sampler = power.PowerSampler(root=tmp_path)
    with sampler:
        pass
    assert sampler.source is None and sampler.summary(frames=5) is None


def test_isa_names_the_int8_features_in_a_fixed_order():
    assert sysinfo.isa(["sse4_2", "avx512_vnni", "avx2", "avx512_bf16"]) == \
        "avx2, avx512_vnni, avx512_bf16"
    assert sysinfo.isa(["asimd", "asimddp"]) == "asimddp"
    assert sysinfo.isa([]) == "none"
