"""How far synchronous data-parallel SGD scales: a model of one training step, not a measurement.

    python benchmarks/scaling_model.py [--batch 32] [--measured PATH] [--save]

The step.  p ranks each hold the whole model and run forward + backward on their own b images (weak
scaling: b per rank is fixed, the global batch is p·b).  Backward costs about twice the forward, so
    t_c = 3 · MACs · 2 FLOP · b / (device FLOP/s),          the same at every p.
Then one allreduce sums the gradient, S = 4 bytes · parameters (float32).  A ring cuts it into p chunks:
p−1 steps of reduce-scatter, then p−1 of allgather; in each step every rank sends S/p bytes and pays
one latency α, so with link bandwidth B
    t_ar(p) = 2(p−1)/p · S/B + 2(p−1) · α,                  t_ar(1) = 0.
minicnn reduces after backward, so nothing overlaps: step(p) = t_c + t_ar(p), throughput = p·b / step,
speedup = throughput(p) / throughput(1), efficiency = speedup / p = t_c / (t_c + t_ar(p)).
A framework that reduces layer by layer during backward hides at best the smaller of the two:
step ≥ max(t_c, t_ar), the dashed "perfect overlap" bound.
The one idea: 2(p−1)/p only grows from 1 to 2, so the bandwidth term barely depends on p.  Whether a
model scales is settled by t_ar/t_c ≈ (4/3)·(parameters/MACs)·(FLOP/s)/(b·B): efficiency ≥ 50% while
t_ar ≤ t_c.  A fast device makes it worse, not better; only the latency term, 2(p−1)·α, grows with p.
--save writes benchmarks/results/scaling_model.{json,md,png}; --json/--markdown/--plot pick the paths.
"""
import argparse
import json
import os
import platform
import sys
from datetime import datetime

import matplotlib
import numpy as np
from matplotlib.figure import Figure

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")
# torchvision's parameter counts and forward MACs at 1x3x224x224 (conv + linear; BN, activations, pools
# and adds ignored); tests/ carries a copy of shared/reference/reference.json so a bare clone has it.
REFERENCE_CANDIDATES = [os.path.join(REPO, "tests", "models", "reference.json"),
                        os.path.join(os.path.dirname(REPO), "shared", "reference", "reference.json")]
EXPECTED_PARAMETERS = {"vgg16": 138_357_544, "resnet50": 25_557_032, "mobilenet_v2": 3_504_872}
MODEL_NAMES = {"vgg16": "VGG-16", "resnet50": "ResNet-50", "mobilenet_v2": "MobileNetV2"}

# Sustained rates, assumptions rather than measurements.  An A100 peaks at 156 TFLOP/s in TF32 on its
# tensor cores (19.5 in plain fp32); a well-tuned training step sustains some 100.  A two-socket CPU
# server with a tuned library sustains about 1 TFLOP/s in fp32.
DEVICES = [{"name": "GPU, A100-class (100 TFLOP/s)", "short": "GPU", "flops_per_s": 100e12},
           {"name": "CPU node (1 TFLOP/s)", "short": "CPU", "flops_per_s": 1e12}]
# Bandwidth per rank in bytes/s, latency per message.  NVLink is drawn as if all 256 ranks shared one
# NVLink switch; real NVLink domains hold 8 to 72 GPUs.
NETWORKS = [{"name": "1 Gb/s Ethernet", "bandwidth_bytes_per_s": 1e9 / 8, "latency_s": 50e-6},
            {"name": "10 Gb/s Ethernet", "bandwidth_bytes_per_s": 10e9 / 8, "latency_s": 50e-6},
            {"name": "100 Gb/s InfiniBand", "bandwidth_bytes_per_s": 100e9 / 8, "latency_s": 5e-6},
            {"name": "NVLink-class 300 GB/s", "bandwidth_bytes_per_s": 300e9, "latency_s": 5e-6}]
RANKS = [2 ** k for k in range(9)]  # 1, 2, 4, ..., 256
PER_RANK_BATCH = 32
BYTES_PER_GRADIENT = 4  # float32
EFFICIENCY_THRESHOLD = 0.5
MODEL_COLORS = {"VGG-16": "tab:blue", "ResNet-50": "tab:orange", "MobileNetV2": "tab:green"}


# --- the model ------------------------------------------------------------------------------
def load_models(path=None):
    """{"VGG-16": {"parameters", "macs", "reference", "linear_parameters", "linear_macs"}, ...}: torchvision's
    counts from the reference facts, checked against the counts this model was written for."""
    candidates = [path] if path else REFERENCE_CANDIDATES
    found = next((candidate for candidate in candidates if os.path.exists(candidate)), None)
    if found is None:
        raise FileNotFoundError(f"scaling_model: no reference facts at {candidates}")
    with open(found) as file:
        reference = json.load(file)
    models = {}
    for key, name in MODEL_NAMES.items():
        parameters, macs = reference[key]["params"], reference[key]["macs_224"]
        if parameters != EXPECTED_PARAMETERS[key]:
            raise ValueError(f"scaling_model: {found} gives {key} {parameters:,} parameters, "
                             f"expected {EXPECTED_PARAMETERS[key]:,}")
        models[name] = {"parameters": parameters, "macs": macs, "reference": key,
                        "linear_parameters": linear_parameters(reference[key]["state_dict"]),
                        "linear_macs": reference[key]["macs_224_breakdown"]["linear"]}
    return models


def linear_parameters(state_dict):
    """Parameters of the fully connected layers: the modules whose weight is 2-D (out, in), and their bias."""
    shapes = dict(state_dict)  # [[key, shape], ...] as the reference stores it
    linear = {key.removesuffix(".weight") for key, shape in shapes.items()
              if key.endswith(".weight") and len(shape) == 2}
    return sum(int(np.prod(shape)) for key, shape in shapes.items() if key.rsplit(".", 1)[0] in linear)


def compute_seconds(macs, per_rank_batch, flops_per_s):
    """Forward + backward of ``per_rank_batch`` images: 3 forwards' worth of 2-FLOP multiply-adds.

    >>> compute_seconds(4.089e9, 32, 100e12)   # ResNet-50 on a 100 TFLOP/s GPU: about 7.9 ms
    """
    return 3 * 2 * macs * per_rank_batch / flops_per_s


def ring_allreduce_seconds(bytes, ranks, bandwidth_bytes_per_s, latency_s):
    """Seconds for a ring allreduce of ``bytes`` over ``ranks``: reduce-scatter then allgather, each
    ``ranks - 1`` steps that send one chunk of ``bytes / ranks`` and pay one latency.

    >>> ring_allreduce_seconds(100e6, 2, 1.25e9, 50e-6)   # 100 MB on 10 Gb/s: 0.08 s + 2 latencies
    """
    if ranks < 1:
        raise ValueError(f"ring_allreduce_seconds: ranks must be at least 1, got {ranks}")
    steps = 2 * (ranks - 1)
    return steps * (bytes / ranks) / bandwidth_bytes_per_s + steps * latency_s


def step_seconds(compute_s, allreduce_s, overlap=False):
    """One training step: compute then allreduce (minicnn), or with ``overlap`` the perfect-overlap
    bound in which the shorter of the two hides entirely behind the longer."""
    return max(compute_s, allreduce_s) if overlap else compute_s + allreduce_s


def scaling_table(models, device, networks, ranks, per_rank_batch=PER_RANK_BATCH):
    """One dict per (model, network, ranks) on ``device``: model, device, network, ranks, per_rank_batch,
    compute_s, allreduce_s, images_per_s, speedup, efficiency, and overlap_efficiency (the bound).

    ``models``: {name: {"parameters", "macs"}}; ``device``: {"name", "flops_per_s"}; ``networks``:
    [{"name", "bandwidth_bytes_per_s", "latency_s"}]; ``ranks``: rank counts, e.g. [1, 2, 4, ...].
    """
    rows = []
    for model, facts in models.items():
        compute_s = compute_seconds(facts["macs"], per_rank_batch, device["flops_per_s"])
        single_rank_images_per_s = per_rank_batch / compute_s  # one rank has nothing to reduce
        gradient_bytes = BYTES_PER_GRADIENT * facts["parameters"]
        for network in networks:
            for count in ranks:
                allreduce_s = ring_allreduce_seconds(gradient_bytes, count, network["bandwidth_bytes_per_s"],
                                                     network["latency_s"])
                images_per_s = count * per_rank_batch / step_seconds(compute_s, allreduce_s)
                overlap_images_per_s = count * per_rank_batch / step_seconds(compute_s, allreduce_s, True)
                speedup = images_per_s / single_rank_images_per_s
                rows.append({"model": model, "device": device["name"], "network": network["name"],
                             "ranks": count, "per_rank_batch": per_rank_batch, "compute_s": compute_s,
                             "allreduce_s": allreduce_s, "images_per_s": images_per_s, "speedup": speedup,
                             "efficiency": speedup / count,
                             "overlap_efficiency": overlap_images_per_s / single_rank_images_per_s / count})
    return rows


def where_scaling_stops(rows, efficiency=EFFICIENCY_THRESHOLD):
    """{(model, network): the largest rank count whose efficiency is at least ``efficiency``} for rows of
    one device (as one ``scaling_table`` call gives).  1 means a second rank already falls below it."""
    devices = {row.get("device") for row in rows}
    if len(devices) > 1:
        raise ValueError(f"where_scaling_stops: rows of one device at a time, got {sorted(devices)}")
    stops = {}
    for row in rows:
        key = (row["model"], row["network"])
        if row["efficiency"] >= efficiency:
            stops[key] = max(stops.get(key, 1), row["ranks"])
        else:
            stops.setdefault(key, 1)
    return stops


def measured_efficiency(measured):
    """[(ranks, efficiency, predicted or None)] for measured rows {"ranks", "images_per_s",
    "allreduce_s_per_step", optional "per_rank_batch"}; efficiency = images_per_s / (p · images_per_s at 1).
    With the batch, "predicted" is this model's no-overlap efficiency from the 1-rank compute time and the
    measured allreduce time."""
    by_ranks = {row["ranks"]: row for row in measured}
    if 1 not in by_ranks:
        raise ValueError("measured rows need a 1-rank row: efficiency is relative to one rank")
    single = by_ranks[1]["images_per_s"]
    points = []
    for count in sorted(by_ranks):
        row = by_ranks[count]
        predicted = None
        if row.get("per_rank_batch"):
            compute_s = row["per_rank_batch"] / single
            predicted = compute_s / step_seconds(compute_s, row["allreduce_s_per_step"])
        points.append((count, row["images_per_s"] / (count * single), predicted))
    return points


# --- the picture ----------------------------------------------------------------------------
def style_efficiency_axes(axes, ranks, threshold):
    """Ranks on a log2 axis, efficiency 0 to 1, the ideal line at 1 and the threshold's line."""
    axes.set_xscale("log", base=2)
    axes.set_xticks(ranks, [str(count) for count in ranks], fontsize=8)
    axes.set_xlim(min(ranks) / 1.2, max(ranks) * 1.2)
    axes.set_ylim(0, 1.08)
    axes.axhline(1.0, color="black", linewidth=1, label="ideal (linear speedup)")
    axes.axhline(threshold, color="tab:red", linestyle=":", linewidth=1.2,
                 label=f"{threshold:.0%} efficiency")
    axes.grid(True, which="major", alpha=0.3)


def plot_scaling(rows, path, measured=None, threshold=EFFICIENCY_THRESHOLD, dpi=110):
    """A PNG of parallel efficiency against ranks (log2 axis): one panel per (device, network), one colour
    per model, solid = compute then allreduce (minicnn), dashed = the perfect-overlap bound; the ideal line
    at 1 and the ``threshold`` line.  ``measured``, optional rows {"ranks", "images_per_s",
    "allreduce_s_per_step", optional "per_rank_batch"} (one of them at 1 rank), adds a small panel of
    measured efficiency.  Returns the Figure.

    >>> plot_scaling(scaling_table(load_models(), DEVICES[0], NETWORKS, RANKS), "runs/scaling.png")
    """
    devices = list(dict.fromkeys(row["device"] for row in rows))
    networks = list(dict.fromkeys(row["network"] for row in rows))
    models = list(dict.fromkeys(row["model"] for row in rows))
    ranks = sorted({row["ranks"] for row in rows})
    columns = len(networks) + (1 if measured else 0)
    figure = Figure(figsize=(3.6 * columns, 3.1 * len(devices) + 1.2), dpi=dpi)
    grid = figure.add_gridspec(len(devices), columns)
    for device_index, device in enumerate(devices):
        for network_index, network in enumerate(networks):
            axes = figure.add_subplot(grid[device_index, network_index])
            style_efficiency_axes(axes, ranks, threshold)
            for model in models:
                line = [row for row in rows
                        if (row["device"], row["network"], row["model"]) == (device, network, model)]
                counts = [row["ranks"] for row in line]
                color = MODEL_COLORS.get(model)
                axes.plot(counts, [row["efficiency"] for row in line], color=color, marker="o", markersize=3,
                          label=f"{model}: compute, then allreduce")
                axes.plot(counts, [row["overlap_efficiency"] for row in line], color=color, linestyle="--",
                          linewidth=1, label=f"{model}: perfect-overlap bound")
            axes.set_title(f"{network}\n{device}", fontsize=9)
            if network_index == 0:
                axes.set_ylabel("parallel efficiency (speedup / p)")
            else:
                axes.tick_params(labelleft=False)
            if device_index == len(devices) - 1:
                axes.set_xlabel("ranks p")
    if measured:
        axes = figure.add_subplot(grid[0, len(networks)])
        points = measured_efficiency(measured)
        style_efficiency_axes(axes, [count for count, _, _ in points], threshold)
        axes.plot([count for count, _, _ in points], [value for _, value, _ in points], "ks",
                  label="measured on this machine")
        predicted = [(count, value) for count, _, value in points if value is not None]
        if predicted:
            axes.plot(*zip(*predicted), color="gray", linestyle="-.",
                      label="model: 1-rank compute + measured allreduce")
        axes.set_title("measured (this machine)", fontsize=9)
        axes.set_xlabel("ranks p")
        if len(devices) > 1:  # the legend goes in the empty cell below, off the points
            legend_axes = figure.add_subplot(grid[1, len(networks)])
            legend_axes.axis("off")
            legend_axes.legend(*axes.get_legend_handles_labels(), fontsize=8, loc="upper left")
        else:
            axes.legend(fontsize=7, loc="lower left")
    handles, labels = figure.axes[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    batch = rows[0]["per_rank_batch"]
    figure.suptitle(f"Data-parallel SGD, weak scaling: {batch} images per rank, float32 gradients, "
                    "ring allreduce (model, not measurement)", fontsize=11)
    figure.tight_layout(rect=(0, 0.09 if len(devices) > 1 else 0.16, 1, 1))
    folder = os.path.dirname(os.fspath(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    figure.savefig(path, format="png", dpi=dpi)
    return figure


# --- the report -----------------------------------------------------------------------------
def markdown_table(header, rows):
    """A markdown table padded into columns, so the same text reads well in a terminal."""
    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |"
                     for line in lines)


def percent(fraction):
    return f"{fraction:.0%}" if fraction >= 0.1 else f"{fraction:.1%}"


def pick(report, device, model, network, ranks):
    """The row of ``model`` on ``device`` and ``network`` at ``ranks``."""
    return next(row for row in report["rows"] if (row["device"], row["model"], row["network"], row["ranks"])
                == (device, model, network, ranks))


def stops_table(report):
    """Where scaling stops: model, its parameters per MAC, network, then per device the largest p at or
    above the threshold and the efficiency at the most ranks."""
    top = max(report["settings"]["ranks"])
    header = ["model", "params / kMAC", "network"]
    for device in report["devices"]:
        header += [f"{device['short']}: stops at p", f"{device['short']}: eff. at {top}"]
    lines = []
    for model, facts in report["models"].items():
        for network in report["networks"]:
            line = [model, f"{1e3 * facts['parameters'] / facts['macs']:.2f}", network["name"]]
            for device in report["devices"]:
                last = pick(report, device["name"], model, network["name"], top)
                stop = report["stops"][device["name"]][model][network["name"]]
                line += [str(stop), percent(last["efficiency"])]
            lines.append(line)
    return markdown_table(header, lines)


def times_table(report):
    """Compute per step, and the allreduce at 2 and at the most ranks on each network, in milliseconds."""
    top = max(report["settings"]["ranks"])
    header = ["model", "device", "compute ms"] + [f"{network['name']}: allreduce ms, p=2 / {top}"
                                                  for network in report["networks"]]
    lines = []
    for model in report["models"]:
        for device in report["devices"]:
            first = pick(report, device["name"], model, report["networks"][0]["name"], 2)
            line = [model, device["short"], f"{first['compute_s'] * 1e3:.2f}"]
            for network in report["networks"]:
                two, many = (pick(report, device["name"], model, network["name"], p) for p in (2, top))
                line.append(f"{two['allreduce_s'] * 1e3:.2f} / {many['allreduce_s'] * 1e3:.2f}")
            lines.append(line)
    return markdown_table(header, lines)


MEANING = """\
What it means.  Efficiency stays at or above {threshold:.0%} while the allreduce takes no longer than the
compute.  A ring sends between 1x and 2x the gradient whatever p is, so the allreduce hardly grows with p:
a model either scales about as far as the table goes, or stops at p = 1 (a second rank already spends
more than half its step waiting).  The verdict is parameters per MAC times device speed over bandwidth,
and a faster device makes it worse: the GPU computes ResNet-50's step in {gpu_resnet_ms:.1f} ms, less than
its {resnet_mb:.0f} MB gradient takes even on InfiniBand ({resnet_ib_ms:.1f} ms at p = 2), so with these
assumptions the GPU scales only on NVLink, while the CPU node, 100x slower, scales on 10 Gb/s Ethernet.
More parameters per MAC means more bytes to send per FLOP: on Ethernet and InfiniBand VGG-16
({vgg_ratio:.2f} parameters per thousand MACs; its fully connected layers hold {vgg_fc:.0%} of its weights
and do {vgg_fc_macs:.1%} of its work) is less efficient than ResNet-50 ({resnet_ratio:.2f}) at every p, and
MobileNetV2, the smallest model, has the most ({mobilenet_ratio:.2f}) and is the least efficient.  At large
p the latency term 2(p-1)α takes over: at {latency_us:g} µs a message, {top} ranks pay {latency_ms:.1f} ms a
step whatever the model, so on NVLink MobileNetV2 ({gpu_mobilenet_ms:.2f} ms of compute) stops at
{mobilenet_nvlink} ranks and ResNet-50 ends below VGG-16.  Overlapping the allreduce with backward (the
dashed lines) can at most double a step's speed: it cannot rescue a network whose allreduce is 10x the
compute.
"""


def markdown(report):
    meta, settings, models = report["meta"], report["settings"], report["models"]
    gpu, top = report["devices"][0]["name"], max(settings["ranks"])
    infiniband, nvlink = report["networks"][2], report["networks"][3]
    resnet = pick(report, gpu, "ResNet-50", infiniband["name"], 2)
    ratio = {model: 1e3 * facts["parameters"] / facts["macs"] for model, facts in models.items()}
    vgg = models["VGG-16"]
    meaning = MEANING.format(
        threshold=settings["threshold"], gpu_resnet_ms=resnet["compute_s"] * 1e3,
        resnet_mb=BYTES_PER_GRADIENT * models["ResNet-50"]["parameters"] / 1e6,
        resnet_ib_ms=resnet["allreduce_s"] * 1e3, vgg_ratio=ratio["VGG-16"], resnet_ratio=ratio["ResNet-50"],
        mobilenet_ratio=ratio["MobileNetV2"], vgg_fc=vgg["linear_parameters"] / vgg["parameters"],
        vgg_fc_macs=vgg["linear_macs"] / vgg["macs"], latency_us=nvlink["latency_s"] * 1e6, top=top,
        latency_ms=2 * (top - 1) * nvlink["latency_s"] * 1e3,
        gpu_mobilenet_ms=pick(report, gpu, "MobileNetV2", nvlink["name"], 2)["compute_s"] * 1e3,
        mobilenet_nvlink=report["stops"][gpu]["MobileNetV2"][nvlink["name"]])
    devices = "; ".join(f"{device['short']} = {device['name']}" for device in report["devices"])
    networks = "; ".join(f"{network['name']} ({network['bandwidth_bytes_per_s'] / 1e9:g} GB/s, "
                         f"{network['latency_s'] * 1e6:g} µs)" for network in report["networks"])
    return (f"# Where data-parallel SGD stops scaling (a model, not a measurement)\n\n"
            f"Written {meta['date']} on {meta['machine']}; python {meta['python']}, numpy {meta['numpy']}, "
            f"matplotlib {meta['matplotlib']}.  The model, derived: benchmarks/scaling_model.py.\n\n"
            f"Weak scaling, {settings['per_rank_batch']} images per rank at 224x224; step = compute "
            f"(3 x forward MACs x 2 FLOP) + ring allreduce of 4 bytes x parameters, no overlap.  Devices "
            f"(sustained rates, assumed): {devices}.  Networks: {networks}.  Parameters and MACs: "
            f"torchvision's (tests/models/reference.json).\n\n"
            f"## Largest rank count p with efficiency >= {settings['threshold']:.0%}\n\n"
            + stops_table(report) + "\n\n" + meaning + "\n## Step times\n\n" + times_table(report) + "\n")


def build_report(per_rank_batch=PER_RANK_BATCH, ranks=RANKS, threshold=EFFICIENCY_THRESHOLD):
    """Every device's rows and where scaling stops on each network, with the assumptions and the machine."""
    models = load_models()
    rows, stops = [], {}
    for device in DEVICES:
        device_rows = scaling_table(models, device, NETWORKS, ranks, per_rank_batch)
        rows += device_rows
        device_stops = where_scaling_stops(device_rows, threshold)  # tuple keys; JSON needs nesting
        stops[device["name"]] = {model: {network: rank for (name, network), rank in device_stops.items()
                                         if name == model} for model in models}
    meta = {"date": datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": platform.platform(), "python": platform.python_version(), "numpy": np.__version__,
            "matplotlib": matplotlib.__version__}
    settings = {"per_rank_batch": per_rank_batch, "ranks": list(ranks), "threshold": threshold,
                "bytes_per_gradient": BYTES_PER_GRADIENT}
    return {"meta": meta, "settings": settings, "models": models, "devices": DEVICES, "networks": NETWORKS,
            "rows": rows, "stops": stops}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=PER_RANK_BATCH, help="images per rank (default 32)")
    parser.add_argument("--threshold", type=float, default=EFFICIENCY_THRESHOLD,
                        help="efficiency below which scaling has stopped (default 0.5)")
    parser.add_argument("--measured", default=None,
                        help="a JSON list of rows {ranks, images_per_s, allreduce_s_per_step} to draw")
    parser.add_argument("--save", action="store_true",
                        help="write benchmarks/results/scaling_model.{json,md,png}")
    parser.add_argument("--json", default=None, help="write the rows and the verdicts to this file")
    parser.add_argument("--markdown", default=None, help="write the tables as markdown to this file")
    parser.add_argument("--plot", default=None, help="draw efficiency against ranks to this PNG")
    args = parser.parse_args(argv)
    if args.save:
        args.json = args.json or os.path.join(RESULTS, "scaling_model.json")
        args.markdown = args.markdown or os.path.join(RESULTS, "scaling_model.md")
        args.plot = args.plot or os.path.join(RESULTS, "scaling_model.png")
    report = build_report(args.batch, RANKS, args.threshold)
    measured = None
    if args.measured:
        with open(args.measured) as file:
            measured = report["measured"] = json.load(file)
    print(stops_table(report))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
    if args.markdown:
        with open(args.markdown, "w") as file:
            file.write(markdown(report))
    if args.plot:
        plot_scaling(report["rows"], args.plot, measured, args.threshold)
    for path in (args.json, args.markdown, args.plot):
        if path:
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
