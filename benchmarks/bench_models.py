"""Whole models, minicnn against PyTorch on the same weights: training and inference steps, speed and memory.

    python benchmarks/bench_models.py [--models resnet18 vgg16] [--size 32] [--batch 64] [--repeats 5]
                                      [--threads N] [--json PATH] [--markdown PATH] [--plot PATH] [--save]
    python benchmarks/bench_models.py --memory-case vgg16-224   # only VGG-16's 224x224 training-step memory
    python benchmarks/bench_models.py --quick                   # every model and code path, tiny sizes (CI)

Each model is built in minicnn and its weights copied into the same network in plain torch.nn
(torch_models.py, checked key for key against torchvision); both models' eval logits must agree
before any clock starts.  A training step is forward, cross-entropy, backward and an SGD step
(momentum 0.9) in train mode; an inference step is a forward under no_grad in eval mode.  One
warm-up step, then the median [min-max] of ``--repeats``, both libraries on the same number of
threads.  ratio = minicnn img/s / torch img/s: above 1 minicnn is faster.

Each model is timed in a fresh process, and each (library, model, step) peak memory is measured in
one of its own: the rise of the peak resident size over the process's baseline after imports and
the model build (the high-water mark is reset there, so a transient of the build cannot hide the
step).  glibc is told to unmap freed blocks, so resident memory follows what is live, not what
malloc keeps cached.  --quick gives each process one thread and runs two memory processes at once.
"""
import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np

import minicnn
import minicnn.nn.functional as F
from minicnn import models, optim

from bench_ops import timed, write_report  # this folder's scripts share one timer: a warm-up, then median, min and max

MODELS = ["vgg11_bn", "vgg16", "resnet18", "resnet50", "mobilenet_v2"]
LIBRARIES = ["minicnn", "torch"]
STEPS = ["infer", "train"]  # inference first: the training steps change the weights
MEMORY_CASES = {"vgg16-224": dict(model="vgg16", size=224, batch=8)}  # target: minicnn's peak <= PyTorch's
# --quick: one thread a process, so two processes share two cores without their thread pools spinning
# against each other (CPU time halves on a busy machine); its clocks only show that the code runs.
QUICK = dict(size=32, batch=2, repeats=1, threads=1, memory_case=dict(model="vgg16", size=64, batch=2))
LR = 1e-3  # small enough that --quick's batch of 2 stays finite: NaNs would time another computation
LOGIT_TOLERANCE = 1e-3  # max |minicnn - torch| over max |torch|, eval logits of the first CHECK_BATCH images
CHECK_BATCH = 4
THREAD_VARIABLES = ["OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "MINICNN_NUM_THREADS"]
# Fixed thresholds turn off glibc's adaptive ones: big blocks are mmapped, and unmapped when freed.
MALLOC_VARIABLES = {"MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "131072"}
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def import_torch(threads):
    try:
        import torch
    except ImportError:
        raise SystemExit("bench_models: PyTorch is the reference; install it with pip install -e '.[test]'")
    torch.set_num_threads(threads)
    return torch


def available_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- one step of each library ------------------------------------------------------------
def make_inputs(size, batch, num_classes):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, 3, size, size), dtype=np.float32), rng.integers(0, num_classes, batch)


def minicnn_steps(model, images, labels, device):
    """{"train": step, "infer": step} for a minicnn ``model`` already on ``device``."""
    optimizer = optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    x, y = minicnn.tensor(images, device=device), minicnn.tensor(labels, device=device)

    def train():
        model.train()
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def infer():
        model.eval()
        with minicnn.no_grad():
            return model(x)

    return dict(train=train, infer=infer)


def torch_steps(torch, model, images, labels, device):
    """The same two steps for a torch ``model`` already on ``device``."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)
    x, y = torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)

    def train():
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def infer():
        model.eval()
        with torch.no_grad():
            return model(x)

    return dict(train=train, infer=infer)


def build_pair(name, num_classes):
    """minicnn's ``name`` and its torch twin (torch_models.py), checked against torchvision's state_dict."""
    import torch_models

    minicnn.manual_seed(0)
    theirs = torch_models.MODELS[name](num_classes)
    torch_models.check_against_torchvision(name, theirs, num_classes)
    return models.get_model(name, num_classes=num_classes), theirs


def copy_weights(torch, ours, theirs):
    """minicnn's weights and buffers into the torch model, strictly: every key, every shape."""
    state = {key: torch.from_numpy(value) for key, value in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


def check_same_logits(torch, name, ours, theirs, images, device):
    """Fail loudly unless both models' eval logits agree to LOGIT_TOLERANCE of the logit scale."""
    ours.eval(), theirs.eval()
    with minicnn.no_grad():
        mine = ours(minicnn.tensor(images, device=device)).numpy()
    with torch.no_grad():
        reference = theirs(torch.from_numpy(images).to(device)).cpu().numpy()
    scale = float(np.abs(reference).max())
    error = float(np.abs(mine - reference).max()) / scale
    if not error <= LOGIT_TOLERANCE:  # also catches NaN
        raise SystemExit(f"bench_models: {name} on {device}: minicnn's and torch's eval logits differ by "
                         f"{error:.2e} of their scale {scale:.3g} (tolerance {LOGIT_TOLERANCE}); not timed")
    return error


def time_step(step, repeats, synchronize):
    """{"median", "min", "max"} seconds of ``step`` after a warm-up, each waiting for the GPU to finish."""
    def run():
        step()
        synchronize()

    return timed(run, repeats)


def synchronizers(torch, device):
    """(minicnn's, torch's) wait-for-the-device functions."""
    if device == "cpu":
        return (lambda: None), (lambda: None)
    import cupy

    return cupy.cuda.Device().synchronize, torch.cuda.synchronize


# --- what the worker processes do ---------------------------------------------------------
def time_model(spec):
    """Rows of img/s for one model: each device, each step, both libraries."""
    torch = import_torch(spec["threads"])
    if "cuda" in spec["devices"]:  # full float32 on both sides, as bench_gpu.py does
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    name, batch = spec["model"], spec["batch"]
    images, labels = make_inputs(spec["size"], batch, spec["num_classes"])
    ours, theirs = build_pair(name, spec["num_classes"])
    rows = []
    for device in spec["devices"]:
        copy_weights(torch, ours, theirs)  # on each device: the last device's training steps drifted apart
        ours, theirs = ours.to(device), theirs.to(device)
        error = check_same_logits(torch, name, ours, theirs, images[:CHECK_BATCH], device)
        steps = dict(minicnn=minicnn_steps(ours, images, labels, device),
                     torch=torch_steps(torch, theirs, images, labels, device))
        for step in STEPS:
            row = dict(case=f"{name} {step} {device}", model=name, step=step, device=device,
                       size=spec["size"], batch=batch, logit_error=error)
            for library, synchronize in zip(LIBRARIES, synchronizers(torch, device)):
                seconds = time_step(steps[library][step], spec["repeats"], synchronize)
                row.update({f"{library}_img_s": batch / seconds["median"],
                            f"{library}_img_s_min": batch / seconds["max"],
                            f"{library}_img_s_max": batch / seconds["min"]})
            row["ratio"] = row["minicnn_img_s"] / row["torch_img_s"]
            rows.append(row)
    return rows


def peak_rss_kib():
    """This process's peak resident size in KiB: VmHWM where Linux has it, else ru_maxrss.

    On Linux ru_maxrss is max(VmHWM, the peak exec carried over from the parent): a worker started by a
    parent holding torch began at 230 MiB, and minicnn's smaller steps read as 0.
    """
    if os.path.exists("/proc/self/status"):
        with open("/proc/self/status") as file:
            return next(int(line.split()[1]) for line in file if line.startswith("VmHWM:"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # macOS counts bytes


def peak_memory(spec):
    """KiB by which one step (run twice: the second holds the momentum the first made) raises the peak."""
    images, labels = make_inputs(spec["size"], spec["batch"], spec["num_classes"])
    if spec["library"] == "torch":  # only the library measured is imported and built
        torch = import_torch(spec["threads"])
        import torch_models

        model = torch_models.MODELS[spec["model"]](spec["num_classes"])
        step = torch_steps(torch, model, images, labels, "cpu")
    else:
        model = models.get_model(spec["model"], num_classes=spec["num_classes"])
        step = minicnn_steps(model, images, labels, "cpu")
    gc.collect()
    try:  # clear_refs 5 restarts the high-water mark from the resident size now
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")
        reset = True
    except OSError:
        reset = False
    baseline = peak_rss_kib()
    step[spec["step"]]()
    step[spec["step"]]()
    return dict(peak_kib=peak_rss_kib() - baseline, baseline_kib=baseline, peak_reset=reset)


WORKERS = {"time": time_model, "memory": peak_memory}


def run_worker(spec):
    """Run ``spec`` in a fresh process of this script; its answer is the last line it prints."""
    env = dict(os.environ, **{variable: str(spec["threads"]) for variable in THREAD_VARIABLES})
    if spec["task"] == "memory":
        env.update(MALLOC_VARIABLES)
    command = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(spec)]
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bench_models: worker {spec} failed (exit {done.returncode}):\n{done.stdout}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_models(names, settings, devices):
    """Rows of img/s, one model at a time: nothing else runs beside a clock."""
    rows = []
    for name in names:
        began = time.perf_counter()
        rows += run_worker(dict(settings, task="time", model=name, devices=devices))
        print(f"timed {name} ({time.perf_counter() - began:.0f} s)", flush=True)
    return rows


def measure_memory(jobs, settings):
    """Peak MiB of each job (library, model, step, ...), several processes at once when their threads fit
    the cores: a process's resident memory does not depend on its neighbours, only its time does."""
    began = time.perf_counter()
    processes = max(1, available_cores() // settings["threads"])
    with ThreadPoolExecutor(processes) as pool:  # threads that only wait on their process
        futures = [pool.submit(run_worker, dict(settings, task="memory", **job)) for job in jobs]
        try:
            peaks = [future.result() for future in futures]
        except BaseException:
            pool.shutdown(cancel_futures=True)  # one failed worker ends the run: start no more
            raise
    print(f"measured peak memory in {len(jobs)} processes ({time.perf_counter() - began:.0f} s)", flush=True)
    return [peak["peak_kib"] / 1024 for peak in peaks]


# --- reporting ------------------------------------------------------------------------
def describe_machine(torch, threads):
    cpu = None
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as file:
            names = [line.split(":", 1)[1].strip() for line in file if line.startswith("model name")]
            cpu = names[0] if names else None
    return dict(platform=platform.platform(), cpu=cpu or platform.processor() or platform.machine(),
                cores=available_cores(), threads=threads, python=platform.python_version(),
                numpy=np.__version__, torch=torch.__version__, minicnn=minicnn.__version__,
                date=datetime.now().astimezone().isoformat(timespec="seconds"))


HEADER = ["model", "step", "device", "minicnn img/s [min-max]", "torch img/s [min-max]", "ratio",
          "minicnn peak MiB", "torch peak MiB"]
MEMORY_HEADER = ["memory case (train step)", "minicnn peak MiB", "torch peak MiB", "minicnn / torch",
                 "target met"]


def cells(row):
    def img_s(library):
        median, low, high = (row[f"{library}_img_s{end}"] for end in ("", "_min", "_max"))
        return f"{median:.1f} [{low:.1f}-{high:.1f}]"

    return [row["model"], row["step"], row["device"], img_s("minicnn"), img_s("torch"), f"{row['ratio']:.2f}",
            mib(row["minicnn_peak_mib"]), mib(row["torch_peak_mib"])]


def memory_cells(case):
    return [case["case"], mib(case["minicnn_peak_mib"]), mib(case["torch_peak_mib"]),
            f"{case['minicnn_over_torch']:.2f}", "yes" if case["target_met"] else "no"]


def mib(value):
    return "-" if value is None else f"{value:.0f}"


def markdown_table(header, rows):
    """A markdown table padded into columns, so the same text reads well in a terminal."""
    widths = [max(len(line[column]) for line in [header, *rows]) for column in range(len(header))]
    lines = [header, ["-" * width for width in widths], *rows]
    return "\n".join("| " + " | ".join(cell.ljust(width) for cell, width in zip(line, widths)) + " |"
                     for line in lines)


def markdown(report):
    meta, settings = report["meta"], report["settings"]
    text = (f"# minicnn vs PyTorch: whole models\n\n{meta['cpu']}, {meta['cores']} cores, "
            f"{meta['threads']} threads; numpy {meta['numpy']}, torch {meta['torch']}, "
            f"python {meta['python']}; {meta['date']}.\n\nPeak MiB: rise of the peak resident size over "
            "the step, each in a fresh process.\n")
    if report["results"]:
        text += (f"\nInputs {settings['size']}x{settings['size']}, batch {settings['batch']}, "
                 f"{settings['num_classes']} classes. Median of {settings['repeats']} steps after a warm-up, "
                 "[min-max]. ratio = minicnn img/s / torch img/s (above 1: minicnn faster).\n\n")
        text += markdown_table(HEADER, [cells(row) for row in report["results"]]) + "\n"
    if report["memory_case"]:
        text += "\nTarget: minicnn's peak no more than PyTorch's.\n\n"
        text += markdown_table(MEMORY_HEADER, [memory_cells(case) for case in report["memory_case"]]) + "\n"
    if report["gpu_skipped"]:
        text += f"\nGPU rows skipped: {report['gpu_skipped']}\n"
    return text


def write_outputs(report, args):
    settings = report["settings"]  # a --memory-case run has no speeds to draw
    write_report(report, args, markdown(report), report["results"],
                 f"minicnn vs PyTorch, whole models ({settings['size']}x{settings['size']}, "
                 f"batch {settings['batch']}; img/s ratio)")


# --- the run ------------------------------------------------------------------------------
def gpu_skipped_reason(torch):
    if not minicnn.cuda.is_available():
        return f"minicnn has no GPU: {minicnn.cuda.unavailable_reason()}"
    if not torch.cuda.is_available():
        return "torch.cuda.is_available() is False (a CPU-only build, or no GPU it can use)"
    return None


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=None, help="default: all five")
    parser.add_argument("--size", type=int, default=32, help="input height and width (default 32)")
    parser.add_argument("--batch", type=int, default=64, help="images per step (default 64)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5, help="timed steps after the warm-up (default 5)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both libraries (default: every core this process may use)")
    parser.add_argument("--memory-case", choices=sorted(MEMORY_CASES), default=None,
                        help="a big training step's peak memory; part of the full run (no --models)")
    parser.add_argument("--quick", action="store_true", help="every model and code path at a tiny size")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--markdown", default=None, help="also write a markdown table to this file")
    parser.add_argument("--plot", default=None, help="also draw the ratios to this PNG")
    parser.add_argument("--save", action="store_true", help="all three to benchmarks/results/models_cpu.*")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one measurement, a fresh process
    args = parser.parse_args(argv)
    if args.save:
        args.json = args.json or os.path.join(RESULTS, "models_cpu.json")
        args.markdown = args.markdown or os.path.join(RESULTS, "models_cpu.md")
        args.plot = args.plot or os.path.join(RESULTS, "models_cpu.png")
    if args.quick:
        args.size, args.batch, args.repeats = QUICK["size"], QUICK["batch"], QUICK["repeats"]
        args.threads = args.threads or QUICK["threads"]
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["task"]](spec)))
        return None
    threads = args.threads or available_cores()
    torch = import_torch(threads)
    names = args.models or ([] if args.memory_case else MODELS)  # what you name runs; naming nothing runs all
    case_name = args.memory_case or (None if args.models else "vgg16-224")
    memory_case = case_name and (QUICK["memory_case"] if args.quick else MEMORY_CASES[case_name])
    gpu_skipped = gpu_skipped_reason(torch)
    if gpu_skipped:
        print(f"GPU rows skipped: {gpu_skipped}")
    settings = dict(threads=threads, num_classes=args.num_classes, size=args.size, batch=args.batch,
                    repeats=args.repeats)
    report = dict(meta=describe_machine(torch, threads), settings=dict(settings, quick=args.quick),
                  results=[], memory_case=[], gpu_skipped=gpu_skipped)
    workload = f"; {args.size}x{args.size}, batch {args.batch}, median of {args.repeats} after a warm-up"
    print(f"{report['meta']['cpu']}; threads: {threads}{workload if names else ''}")

    rows = report["results"] = time_models(names, settings, ["cpu"] if gpu_skipped else ["cpu", "cuda"])
    cpu_rows = [row for row in rows if row["device"] == "cpu"]  # resident memory means something there only
    jobs = [dict(library=library, model=row["model"], step=row["step"])
            for row in cpu_rows for library in LIBRARIES]
    jobs += [dict(memory_case, step="train", library=library) for library in LIBRARIES] if memory_case else []
    peaks = iter(measure_memory(jobs, settings))
    for row in rows:
        for library in LIBRARIES:
            row[f"{library}_peak_mib"] = next(peaks) if row["device"] == "cpu" else None
    if memory_case:
        size, batch = memory_case["size"], memory_case["batch"]
        case = dict(case=f"{memory_case['model']} {size}x{size} batch {batch}", model=memory_case["model"],
                    size=size, batch=batch, minicnn_peak_mib=next(peaks), torch_peak_mib=next(peaks))
        case.update(minicnn_over_torch=case["minicnn_peak_mib"] / case["torch_peak_mib"],
                    target_met=case["minicnn_peak_mib"] <= case["torch_peak_mib"])
        report["memory_case"].append(case)

    if rows:
        print("\n" + markdown_table(HEADER, [cells(row) for row in rows]))
    if report["memory_case"]:
        print("\n" + markdown_table(MEMORY_HEADER, [memory_cells(case) for case in report["memory_case"]]))
    write_outputs(report, args)
    return report


if __name__ == "__main__":
    main()
