"""benchmarks/scaling_model.py: the ring-allreduce formula, the efficiency curve it gives, the verdicts
its report states in words (VGG-16 vs ResNet-50, MobileNetV2's parameters per MAC), and the files it writes.

Pure arithmetic on torchvision's counts: no timing, nothing random, so exact thresholds are safe to pin.
"""
import itertools
import json
import math
import os
import subprocess
import sys

import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks")
sys.path.insert(0, BENCHMARKS)
try:
    import scaling_model
finally:
    sys.path.remove(BENCHMARKS)

MB_100 = 100e6
TEN_GBE = next(network for network in scaling_model.NETWORKS if network["name"] == "10 Gb/s Ethernet")
NVLINK = next(network for network in scaling_model.NETWORKS if network["name"].startswith("NVLink"))
GPU, CPU = scaling_model.DEVICES


@pytest.fixture(scope="module")
def models():
    return scaling_model.load_models()


def rows_for(rows, model, network):
    return sorted((row for row in rows if (row["model"], row["network"]) == (model, network["name"])),
                  key=lambda row: row["ranks"])


def test_ring_allreduce_costs_nothing_on_one_rank():
    assert scaling_model.ring_allreduce_seconds(MB_100, 1, 1.25e9, 50e-6) == 0.0


def test_ring_allreduce_on_two_ranks_sends_the_buffer_once_and_pays_two_latencies():
    seconds = scaling_model.ring_allreduce_seconds(MB_100, 2, 1.25e9, 50e-6)
    assert seconds == pytest.approx(MB_100 / 1.25e9 + 2 * 50e-6, rel=1e-12)


def test_ring_allreduce_bandwidth_term_tends_to_twice_the_buffer():
    limit = 2 * MB_100 / 1.25e9
    times = [scaling_model.ring_allreduce_seconds(MB_100, ranks, 1.25e9, 0.0)
             for ranks in (2, 16, 256, 10**6)]
    assert times == sorted(times) and all(seconds < limit for seconds in times)
    assert times[-1] == pytest.approx(limit, rel=1e-5)


def test_ring_allreduce_rejects_zero_ranks():
    with pytest.raises(ValueError, match="ranks"):
        scaling_model.ring_allreduce_seconds(MB_100, 0, 1.25e9, 0.0)


def test_step_adds_compute_and_allreduce_and_the_overlap_bound_takes_the_longer():
    assert scaling_model.step_seconds(0.03, 0.01) == pytest.approx(0.04)
    assert scaling_model.step_seconds(0.03, 0.01, overlap=True) == 0.03
    assert scaling_model.step_seconds(0.01, 0.03, overlap=True) == 0.03


@pytest.mark.parametrize("device", scaling_model.DEVICES, ids=lambda device: device["short"])
def test_efficiency_is_one_on_one_rank_and_never_rises_with_ranks(models, device):
    rows = scaling_model.scaling_table(models, device, scaling_model.NETWORKS, scaling_model.RANKS)
    assert len(rows) == len(models) * len(scaling_model.NETWORKS) * len(scaling_model.RANKS)
    for model in models:
        for network in scaling_model.NETWORKS:
            line = rows_for(rows, model, network)
            assert line[0]["ranks"] == 1 and line[0]["efficiency"] == pytest.approx(1.0)
            assert line[0]["speedup"] == pytest.approx(1.0) and line[0]["allreduce_s"] == 0.0
            for previous, row in itertools.pairwise(line):
                assert row["efficiency"] <= previous["efficiency"]
                assert row["efficiency"] <= row["overlap_efficiency"] <= 1.0
                assert row["efficiency"] == pytest.approx(row["speedup"] / row["ranks"])
                assert row["images_per_s"] == pytest.approx(
                    row["ranks"] * row["per_rank_batch"] / (row["compute_s"] + row["allreduce_s"]))


def test_compute_time_is_three_forwards_of_two_flop_multiply_adds(models):
    rows = scaling_model.scaling_table(models, GPU, [TEN_GBE], [1])
    resnet = next(row for row in rows if row["model"] == "ResNet-50")
    assert resnet["compute_s"] == pytest.approx(3 * 2 * 4_089_184_256 * 32 / 100e12)


def test_where_scaling_stops_takes_the_largest_rank_count_at_or_above_the_threshold():
    rows = [{"model": "m", "network": "n", "ranks": ranks, "efficiency": efficiency}
            for ranks, efficiency in [(1, 1.0), (2, 0.9), (4, 0.5), (8, 0.49)]]
    assert scaling_model.where_scaling_stops(rows) == {("m", "n"): 4}
    assert scaling_model.where_scaling_stops(rows, efficiency=0.95) == {("m", "n"): 1}
    with pytest.raises(ValueError, match="one device"):
        scaling_model.where_scaling_stops([dict(rows[0], device="a"), dict(rows[1], device="b")])


@pytest.mark.parametrize("device", scaling_model.DEVICES, ids=lambda device: device["short"])
@pytest.mark.parametrize("network", scaling_model.NETWORKS[:3], ids=lambda network: network["name"])
def test_more_parameters_per_mac_is_less_efficient_off_nvlink(models, device, network):
    # Per thousand MACs MobileNetV2 sends 11.7 parameters, VGG-16 8.9, ResNet-50 6.3: where bandwidth
    # dominates the allreduce, that is the order of efficiency at every rank count (the report says so).
    rows = scaling_model.scaling_table(models, device, [network], scaling_model.RANKS)
    lines = [rows_for(rows, model, network)[1:] for model in ("MobileNetV2", "VGG-16", "ResNet-50")]
    for mobilenet, vgg, resnet in zip(*lines):
        assert mobilenet["efficiency"] < vgg["efficiency"] < resnet["efficiency"]
    stops = scaling_model.where_scaling_stops(rows)
    assert stops["VGG-16", network["name"]] <= stops["ResNet-50", network["name"]]


def test_vgg16_stops_scaling_at_fewer_ranks_than_resnet50_on_10_gbe(models):
    # On the report's two devices both verdicts tie (the GPU: neither scales; the CPU node: both reach
    # 256), because the ring's bandwidth term barely grows with p.  A 4 TFLOP/s node sits between the two
    # models' break-even points: VGG-16's allreduce overtakes its compute by 8 ranks, ResNet-50's never.
    node = {"name": "4 TFLOP/s node", "flops_per_s": 4e12}
    stops = scaling_model.where_scaling_stops(scaling_model.scaling_table(models, node, [TEN_GBE],
                                                                          scaling_model.RANKS))
    assert stops["VGG-16", TEN_GBE["name"]] == 4
    assert stops["ResNet-50", TEN_GBE["name"]] == 256


def test_mobilenet_v2_has_the_most_parameters_per_mac_and_stops_first_on_nvlink(models):
    ratio = {name: facts["parameters"] / facts["macs"] for name, facts in models.items()}
    assert ratio["MobileNetV2"] > ratio["VGG-16"] > ratio["ResNet-50"]
    assert ratio["MobileNetV2"] == pytest.approx(3_504_872 / 300_774_272)
    rows = scaling_model.scaling_table(models, GPU, [NVLINK], scaling_model.RANKS)
    stops = scaling_model.where_scaling_stops(rows)
    assert stops["MobileNetV2", NVLINK["name"]] == 32
    assert stops["VGG-16", NVLINK["name"]] == stops["ResNet-50", NVLINK["name"]] == 256
    # 256 ranks pay 2.55 ms of latency whatever the model: ResNet-50's 7.9 ms of compute feels it more
    # than VGG-16's 29.7 ms, so on NVLink it ends below VGG-16.
    last = {row["model"]: row["efficiency"] for row in rows if row["ranks"] == 256}
    assert last["ResNet-50"] < last["VGG-16"]


def test_parameter_counts_and_macs_are_read_from_the_reference(models):
    with open(scaling_model.REFERENCE_CANDIDATES[0]) as file:
        reference = json.load(file)
    assert {name: facts["parameters"] for name, facts in models.items()} == {
        "VGG-16": 138_357_544, "ResNet-50": 25_557_032, "MobileNetV2": 3_504_872}
    for facts in models.values():
        assert facts["macs"] == reference[facts["reference"]]["macs_224"]
    assert math.isclose(models["VGG-16"]["macs"] / 1e9, 15.47, rel_tol=1e-3)
    # VGG-16's three fully connected layers: 25088·4096 + 4096·4096 + 4096·1000 weights and their biases.
    weights, biases = 25088 * 4096 + 4096 * 4096 + 4096 * 1000, 4096 + 4096 + 1000
    assert models["VGG-16"]["linear_parameters"] == weights + biases


def test_a_reference_with_other_counts_is_refused(tmp_path, models):
    with open(scaling_model.REFERENCE_CANDIDATES[0]) as file:
        reference = json.load(file)
    reference["resnet50"]["params"] += 1
    path = tmp_path / "reference.json"
    path.write_text(json.dumps(reference))
    with pytest.raises(ValueError, match="resnet50"):
        scaling_model.load_models(str(path))


def test_plot_scaling_writes_a_png(tmp_path, models):
    rows = [row for device in scaling_model.DEVICES for row
            in scaling_model.scaling_table(models, device, scaling_model.NETWORKS, scaling_model.RANKS)]
    path = tmp_path / "plots" / "scaling.png"
    figure = scaling_model.plot_scaling(rows, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert len(figure.axes) == len(scaling_model.DEVICES) * len(scaling_model.NETWORKS)


def test_plot_scaling_draws_measured_rows_on_a_panel_of_their_own(tmp_path, models):
    rows = scaling_model.scaling_table(models, CPU, scaling_model.NETWORKS, scaling_model.RANKS)
    measured = [{"ranks": 1, "images_per_s": 100.0, "allreduce_s_per_step": 0.0, "per_rank_batch": 32},
                {"ranks": 2, "images_per_s": 160.0, "allreduce_s_per_step": 0.04, "per_rank_batch": 32}]
    figure = scaling_model.plot_scaling(rows, tmp_path / "measured.png", measured=measured)
    assert len(figure.axes) == len(scaling_model.NETWORKS) + 1
    assert (tmp_path / "measured.png").stat().st_size > 0
    points = scaling_model.measured_efficiency(measured)
    assert points[1][1] == pytest.approx(0.8)
    assert points[1][2] == pytest.approx(0.32 / (0.32 + 0.04))  # 1-rank compute 32/100 s, then the allreduce
    with pytest.raises(ValueError, match="1-rank"):
        scaling_model.measured_efficiency(measured[1:])


def test_main_writes_the_json_the_table_and_the_plot(tmp_path):
    paths = {kind: tmp_path / f"scaling_model.{kind}" for kind in ("json", "md", "png")}
    completed = subprocess.run(
        [sys.executable, os.path.join(BENCHMARKS, "scaling_model.py"), "--json", str(paths["json"]),
         "--markdown", str(paths["md"]), "--plot", str(paths["png"])],
        capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(paths["json"].read_text())
    assert report["stops"][GPU["name"]]["MobileNetV2"][NVLINK["name"]] == 32
    assert report["stops"][CPU["name"]]["VGG-16"][TEN_GBE["name"]] == 256
    assert {"date", "python", "numpy", "matplotlib"} <= set(report["meta"])
    table = paths["md"].read_text()
    assert table.count("| VGG-16 ") >= len(scaling_model.NETWORKS) and "What it means" in table
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
