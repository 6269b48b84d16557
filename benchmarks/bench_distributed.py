"""Data-parallel training measured here: the main job at 1 rank and over MPI at 2, and its allreduce's cost.

    python benchmarks/bench_distributed.py [--ranks 1 2] [--warmup 3] [--steps 30] [--save]
    python benchmarks/bench_distributed.py --quick --output-dir /tmp/dist   # 1 + 4 steps (the test)

The job is ``minicnn train``'s default, built by minicnn/cli.py's own functions: vgg11_bn at width 0.25
on mnist5k, global batch 64, SGD lr 0.01, momentum 0.9, weight decay 5e-4.  1 rank is a plain process
training the plain model; p ranks are this script again under ``mpiexec -n p``, each rank training
DataParallel(model) on its DistributedSampler share, 64/p images a step.  Each run takes warm-up steps,
then times whole steps (batch, forward, loss, backward with its allreduce, SGD step) between two
barriers, so the clock stops when the slowest rank is done.  DataParallel's counters, read over the
timed steps only, split the communication into the collectives (allreduce) and the packing of gradients
into buckets around them.  Then the same buckets are allreduced alone between barriers (the probe): the
link's bandwidth without the time a rank waits for the other to finish its backward.  No PyTorch
reference: the question is what the communication costs (bench_models.py compares the model's speed).

Ranks on one machine share its cores (minicnn.distributed.init gives each cores // ranks threads), so on
a 2-core machine 2 ranks can at best match 1: this measures the overhead, not a speedup.  The measured
rows also go into scaling_model.py's picture.  --save writes benchmarks/results/distributed_cpu.{json,md,
png} and regenerates scaling_model.{json,md,png} with them; --output-dir writes the six files elsewhere.
"""
import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import matplotlib
import numpy as np
import scaling_model  # this folder's ring-allreduce model: it draws the measured rows beside its curves
from matplotlib.figure import Figure

SCRIPT = os.path.abspath(__file__)
RESULTS = os.path.join(os.path.dirname(SCRIPT), "results")
DEFAULT_STEPS = {"warmup": 3, "steps": 30, "probe_repeats": 20}
QUICK_STEPS = {"warmup": 1, "steps": 4, "probe_repeats": 3}
DEFAULT_RANKS = [1, 2]
LAUNCHER_PREFIXES = ("PMI_", "PMIX_", "OMPI_", "HYDI_")  # what mpiexec (MPICH, Open MPI) leaves to its ranks
HEADER = ["ranks", "images/s", "s/step", "allreduce ms/step", "share of step in allreduce",
          "allreduce bandwidth", "BLAS threads/rank"]


def mpiexec_path():
    """The mpiexec beside this Python (a venv's MPICH), else the one on PATH, else None."""
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.access(beside, os.X_OK) else shutil.which("mpiexec")


def mpi_missing_reason():
    """Why this machine cannot run several ranks (no mpiexec, no mpi4py), or None when it can."""
    if mpiexec_path() is None:
        return "no mpiexec beside this Python or on PATH (install MPICH or Open MPI)"
    if importlib.util.find_spec("mpi4py") is None:
        return "mpi4py is not installed (pip install 'minicnn[distributed]')"
    return None


def available_cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# --- one run, on every rank ------------------------------------------------------------------------
def blas_threads():
    """[threads] of each BLAS library loaded in this process, from threadpoolctl; None without it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def bucket_elements(bucket):
    """Values in one DataParallel bucket: (its gradients | 1 has-grad flag per parameter | the batch size)."""
    return sum(param.data.size for param in bucket) + len(bucket) + 1


def gradient_bytes_per_step(data_parallel):
    """Bytes one step allreduces, in the parameters' dtype: 4 x (parameters + parameter tensors + buckets)."""
    return sum(bucket_elements(bucket) * bucket[0].data.itemsize for bucket in data_parallel.buckets)


def probe_allreduce(world, buckets, repeats):
    """Median seconds to allreduce arrays the size of ``buckets``, each repeat started behind a barrier."""
    arrays = [np.ones(bucket_elements(bucket), dtype=bucket[0].data.dtype) for bucket in buckets]
    times = []
    for _ in range(repeats):
        world.barrier()
        started = time.perf_counter()
        for array in arrays:
            world.allreduce(array)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def mpi_library():
    from mpi4py import MPI

    return " ".join(MPI.Get_library_version().strip().splitlines()[0].split())  # "MPICH Version: 4.2.0"


def run_worker(args):
    """Time the main job on this rank; rank 0 writes the row (all ranks' counters) to --ranks-json."""
    import minicnn
    import minicnn.nn.functional as F
    from minicnn import cli, distributed
    from minicnn.backend.cpu import threads
    from minicnn.data import DataLoader, load_dataset

    world = distributed.init()  # under mpiexec: joins MPI and gives this rank its share of the cores
    job = cli.build_parser().parse_args(["train"])  # the CLI's defaults, exactly
    width = cli.DEFAULTS["width"] if job.width is None else job.width
    minicnn.manual_seed(job.seed)
    train_transform, _ = cli._transforms(job.dataset, job.augment)
    train_set = load_dataset(job.dataset, split="train", transform=train_transform)
    model = cli._build_model(job.model, len(train_set.classes), train_set.images.shape[-1], width)
    parameters = [param for param in model.parameters() if param.requires_grad]
    optimizer = cli._make_optimizer(job, model.parameters())
    per_rank_batch = job.batch_size // world.size
    if world.size == 1:
        loader = DataLoader(train_set, batch_size=per_rank_batch, shuffle=True, seed=job.seed)
        trained = model
    else:
        sampler = distributed.DistributedSampler(train_set, seed=job.seed)
        loader = DataLoader(train_set, batch_size=per_rank_batch, sampler=sampler)
        trained = distributed.DataParallel(model)  # rank 0's weights on every rank
    trained.train()

    def batches():
        while True:  # epoch after epoch, as long as the steps ask
            yield from loader

    stream, seconds = batches(), {"data": 0.0}

    def step():
        started = time.perf_counter()
        images, labels = next(stream)
        seconds["data"] += time.perf_counter() - started
        loss = F.cross_entropy(trained(images), labels)
        trained.zero_grad()
        optimizer.zero_grad()
        loss.backward()  # under DataParallel the allreduce runs here, once backward has finished
        loss.item()  # as fit does: the loss is read every step
        optimizer.step()
        return len(labels)

    def counters():  # the plain model at 1 rank has no DataParallel counters: nothing is reduced
        return (getattr(trained, "allreduce_seconds", 0.0), getattr(trained, "communication_seconds", 0.0),
                getattr(trained, "synchronized_steps", 0), seconds["data"])

    for _ in range(args.warmup):
        step()
    before = counters()
    world.barrier()
    started = time.perf_counter()
    images = sum(step() for _ in range(args.steps))
    world.barrier()
    elapsed = time.perf_counter() - started
    allreduce_s, communication_s, synchronized, data_s = (now - then for now, then in zip(counters(), before))
    probe_s = probe_allreduce(world, trained.buckets, args.probe_repeats) if world.size > 1 else 0.0
    mine = [elapsed, allreduce_s, communication_s, data_s, images, synchronized, probe_s]
    ranks = world.allgather(np.array(mine, dtype=np.float64))  # (size, 7): one line per rank
    if world.rank != 0:
        return
    steps, elapsed, probe_s = args.steps, float(ranks[:, 0].max()), float(ranks[:, 6].max())
    allreduce_by_rank = (ranks[:, 1] / steps).tolist()
    allreduce_per_step = float(np.mean(allreduce_by_rank))
    reduced_bytes = gradient_bytes_per_step(trained) if world.size > 1 else 0
    row = {
        "ranks": world.size, "per_rank_batch": per_rank_batch, "global_batch": per_rank_batch * world.size,
        "warmup_steps": args.warmup, "timed_steps": steps, "images": int(ranks[:, 4].sum()),
        "elapsed_s": elapsed, "images_per_s": float(ranks[:, 4].sum()) / elapsed,
        "seconds_per_step": elapsed / steps, "allreduce_s_per_step": allreduce_per_step,
        "allreduce_s_per_step_by_rank": allreduce_by_rank,
        "allreduce_share": allreduce_per_step / (elapsed / steps),
        "packing_s_per_step": float(np.mean(ranks[:, 2] - ranks[:, 1])) / steps,
        "data_s_per_step": float(np.mean(ranks[:, 3])) / steps, "allreduce_bytes_per_step": reduced_bytes,
        "bandwidth_bytes_per_s": reduced_bytes / allreduce_per_step if allreduce_per_step else None,
        "probe_allreduce_s": probe_s if world.size > 1 else None,
        "probe_bandwidth_bytes_per_s": reduced_bytes / probe_s if probe_s else None,
        "synchronized_steps": int(ranks[:, 5].min()),
        "parameters": int(sum(param.data.size for param in parameters)), "parameter_tensors": len(parameters),
        "buckets": len(trained.buckets) if world.size > 1 else 0,
        "bucket_cap_mb": getattr(trained, "bucket_cap_mb", None),
        "cores": available_cores(), "ranks_on_this_machine": world.local_size,
        "blas_threads_per_rank": blas_threads(), "minicnn_threads_per_rank": threads.num_threads(),
        "model": job.model, "width": width, "dataset": job.dataset,
        "optimizer": {"name": job.optimizer, "lr": job.lr, "momentum": job.momentum,
                      "weight_decay": job.weight_decay},
        "mpi_library": mpi_library() if world.size > 1 else None}
    with open(args.ranks_json, "w") as file:
        json.dump(row, file, indent=1)


# --- the parent: one run per rank count ----------------------------------------------------------
def measure(ranks, args, folder):
    """The row of one run on ``ranks`` ranks, in fresh processes (under mpiexec for more than one)."""
    out = os.path.join(folder, f"ranks{ranks}.json")
    worker = [sys.executable, SCRIPT, "--worker", "--ranks-json", out, "--warmup", str(args.warmup),
              "--steps", str(args.steps), "--probe-repeats", str(args.probe_repeats)]
    command = worker if ranks == 1 else [mpiexec_path(), "-n", str(ranks), *worker]
    # Launched from inside an MPI job (pytest under mpiexec), its launcher's variables would make each
    # child think it is one of that job's ranks: every run here starts a world of its own.
    env = {name: value for name, value in os.environ.items() if not name.startswith(LAUNCHER_PREFIXES)}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, check=False)
    if done.returncode != 0 or not os.path.exists(out):
        raise SystemExit(f"bench_distributed: the {ranks}-rank run failed (exit {done.returncode}): "
                         f"{' '.join(command)}")
    print(f"timed {ranks} rank(s) ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    with open(out) as file:
        return json.load(file)


def describe_machine():
    import minicnn

    cpu = None
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as file:
            names = [line.split(":", 1)[1].strip() for line in file if line.startswith("model name")]
            cpu = names[0] if names else None
    try:
        from mpi4py import __version__ as mpi4py_version
    except ImportError:  # a 1-rank run needs no MPI
        mpi4py_version = None
    return {"platform": platform.platform(), "cpu": cpu or platform.processor() or platform.machine(),
            "cores": available_cores(), "python": platform.python_version(), "numpy": np.__version__,
            "mpi4py": mpi4py_version, "matplotlib": matplotlib.__version__, "minicnn": minicnn.__version__,
            "mpiexec": mpiexec_path(), "date": datetime.now().astimezone().isoformat(timespec="seconds")}


# --- the report ----------------------------------------------------------------------------------
def bandwidth(bytes_per_s):
    return "-" if not bytes_per_s else f"{bytes_per_s / 1e9:.2f} GB/s"


def plural(count, word):
    return f"{count} {word}" + ("" if count == 1 else "s")


def joined(values):
    return "/".join(map(str, values or ["?"]))


def cells(row):
    return [str(row["ranks"]), f"{row['images_per_s']:.1f}", f"{row['seconds_per_step']:.3f}",
            f"{row['allreduce_s_per_step'] * 1e3:.1f}", f"{row['allreduce_share']:.1%}",
            bandwidth(row["bandwidth_bytes_per_s"]), joined(row["blas_threads_per_rank"])]


def speedup_words(speedup, ranks):
    """The measured speedup, and why it can be what it is when the ranks share one process's cores."""
    if speedup > 1.05:
        return (f"{speedup:.2f}x: more than 1x can only come from {ranks} processes keeping the cores busier "
                "than one process's threads do (its Python and the NumPy work outside BLAS run on one core), "
                "or from other jobs slowing one run more than the other")
    if speedup < 0.95:
        return f"{speedup:.2f}x: the {1 - speedup:.0%} lost is what the communication costs here"
    return f"{speedup:.2f}x, as expected"


def meaning(report):
    """A paragraph on the rows: what the ranks share, what the allreduce costs, the bandwidth it reached."""
    single = next(row for row in report["rows"] if row["ranks"] == 1)
    many = max(report["rows"], key=lambda row: row["ranks"])
    if many["ranks"] == 1:
        return ""
    p, speedup = many["ranks"], many["images_per_s"] / single["images_per_s"]
    ethernet = next(network for network in scaling_model.NETWORKS if network["name"] == "10 Gb/s Ethernet")
    # scaling_model.py's ring: t = 2(p-1)/p · S/B, so the link's B = 2(p-1)/p · S/t (S/t at p = 2)
    link = 2 * (p - 1) / p * many["probe_bandwidth_bytes_per_s"]
    ethernet_s = scaling_model.ring_allreduce_seconds(
        many["allreduce_bytes_per_step"], p, ethernet["bandwidth_bytes_per_s"], ethernet["latency_s"])
    sentences = [
        (f"The {p} ranks share this machine's {plural(report['meta']['cores'], 'core')} "
         f"({joined(many['blas_threads_per_rank'])} BLAS thread(s) each, against "
         f"{joined(single['blas_threads_per_rank'])} for the single process), so they do the same "
         f"arithmetic on the same cores: about 1x is all {p} ranks can reach here, and this run measures "
         f"what data parallelism costs, not a speedup (measured {speedup_words(speedup, p)})."),
        (f"Every step allreduces {many['allreduce_bytes_per_step'] / 1e6:.1f} MB, the "
         f"{many['parameters']:,} float32 gradients in {plural(many['buckets'], 'bucket')} with "
         f"{many['parameter_tensors'] + many['buckets']} header values, in "
         f"{many['allreduce_s_per_step'] * 1e3:.1f} ms ({many['allreduce_share']:.1%} of the step), and "
         f"packing the buckets and scaling the sums back costs another "
         f"{many['packing_s_per_step'] * 1e3:.1f} ms."),
        (f"That is {bandwidth(many['bandwidth_bytes_per_s'])} through shared-memory MPI; the same buckets "
         f"reduced alone between barriers take {many['probe_allreduce_s'] * 1e3:.1f} ms, "
         f"{bandwidth(many['probe_bandwidth_bytes_per_s'])}, the rest of the time in training being a rank "
         "waiting inside the collective for the other to finish its backward."),
        (f"In scaling_model.py's ring formula that is a link of B = {bandwidth(link)}, "
         f"{link / ethernet['bandwidth_bytes_per_s']:.1f}x a 10 Gb/s Ethernet link, on which the same "
         f"allreduce would take about {ethernet_s * 1e3:.0f} ms a step."),
    ]
    return "What it means.  " + "  ".join(sentences) + "\n"


def markdown(report):
    meta, settings, first = report["meta"], report["settings"], report["rows"][0]
    library = next((row["mpi_library"] for row in report["rows"] if row["mpi_library"]), "no MPI")
    optimizer = first["optimizer"]
    return (f"# Data-parallel training over MPI on this machine (measured)\n\n"
            f"{meta['cpu']}, {meta['cores']} cores; {library}; python {meta['python']}, "
            f"numpy {meta['numpy']}, mpi4py {meta['mpi4py']}, minicnn {meta['minicnn']}; {meta['date']}.\n\n"
            f"Command: `{report['command']}`\n\n"
            f"The main job (`minicnn train`'s defaults): {first['model']} at width {first['width']} "
            f"({first['parameters']:,} parameters) on {first['dataset']}, global batch "
            f"{first['global_batch']}, SGD lr {optimizer['lr']} momentum {optimizer['momentum']} "
            f"weight decay {optimizer['weight_decay']}.  {plural(settings['warmup'], 'warm-up step')}, then "
            f"{settings['steps']} timed steps between barriers; allreduce ms/step is the ranks' mean time "
            f"inside the collectives, bandwidth = bytes reduced per step / that time.\n\n"
            + scaling_model.markdown_table(HEADER, [cells(row) for row in report["rows"]]) + "\n\n"
            + meaning(report))


def plot_steps(report, path, dpi=110):
    """Stacked bars of one step's seconds at each rank count: the batch, compute, packing, allreduce."""
    rows = report["rows"]
    figure = Figure(figsize=(7, 1.2 + 0.7 * len(rows)), dpi=dpi)
    axes = figure.add_subplot()
    labels = [f"{plural(row['ranks'], 'rank')}\n{row['images_per_s']:.0f} img/s" for row in rows]
    parts = {"load the batch": [row["data_s_per_step"] for row in rows],
             "forward, backward, SGD": [row["seconds_per_step"] - row["data_s_per_step"]
                                        - row["packing_s_per_step"] - row["allreduce_s_per_step"]
                                        for row in rows],
             "pack buckets": [row["packing_s_per_step"] for row in rows],
             "allreduce": [row["allreduce_s_per_step"] for row in rows]}
    left = np.zeros(len(rows))
    for (name, seconds), color in zip(parts.items(), ["tab:gray", "tab:blue", "tab:orange", "tab:red"]):
        axes.barh(labels, seconds, left=left, color=color, label=name)
        left += np.asarray(seconds)
    axes.invert_yaxis()
    axes.set_xlabel("seconds per step (mean over ranks)")
    axes.legend(fontsize=8, ncol=4, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    figure.suptitle(f"{rows[0]['model']} on {rows[0]['dataset']}, global batch {rows[0]['global_batch']}, "
                    f"{report['meta']['cores']} shared cores", fontsize=10, y=0.99)
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=dpi)


def scaling_rows(rows):
    """The measured rows as scaling_model.plot_scaling takes them."""
    return [{key: row[key] for key in ("ranks", "images_per_s", "allreduce_s_per_step", "per_rank_batch")}
            for row in rows]


def write_outputs(report, folder, scratch):
    """distributed_cpu.{json,md,png}, and scaling_model.py's three files redrawn with the measured rows."""
    os.makedirs(folder, exist_ok=True)
    paths = {kind: os.path.join(folder, f"distributed_cpu.{kind}") for kind in ("json", "md", "png")}
    with open(paths["json"], "w") as file:
        json.dump(report, file, indent=1)
    with open(paths["md"], "w") as file:
        file.write(markdown(report))
    plot_steps(report, paths["png"])
    measured = os.path.join(scratch, "measured.json")
    with open(measured, "w") as file:
        json.dump(scaling_rows(report["rows"]), file)
    outputs = {"--json": "json", "--markdown": "md", "--plot": "png"}
    options = [part for option, kind in outputs.items()
               for part in (option, os.path.join(folder, f"scaling_model.{kind}"))]
    with contextlib.redirect_stdout(io.StringIO()):  # its verdict table belongs to its own report
        scaling_model.main(["--measured", measured, *options])
    for path in paths.values():
        print(f"wrote {path}", file=sys.stderr)


def parse_args(argv):
    from minicnn.cli import DEFAULTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=DEFAULT_RANKS,
                        help="rank counts to run, 1 among them (default: 1 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 3)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 30)")
    parser.add_argument("--probe-repeats", type=int, default=None,
                        help="allreduces of the gradient buckets alone (default 20; median)")
    parser.add_argument("--quick", action="store_true", help="1 warm-up step and 4 timed ones (the test)")
    parser.add_argument("--save", action="store_true",
                        help="write distributed_cpu.* and scaling_model.* into benchmarks/results/")
    parser.add_argument("--output-dir", default=None, help="write those six files into this folder instead")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one run, on every rank
    parser.add_argument("--ranks-json", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for key, value in (QUICK_STEPS if args.quick else DEFAULT_STEPS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.warmup < 0 or args.steps < 1 or args.probe_repeats < 1:
        parser.error("--warmup must be >= 0, --steps and --probe-repeats >= 1")
    if 1 not in args.ranks or min(args.ranks) < 1:
        parser.error("--ranks must include 1: the other rank counts are measured against it")
    if any(DEFAULTS["batch_size"] % ranks for ranks in args.ranks):
        parser.error(f"every rank count must divide the global batch {DEFAULTS['batch_size']}")
    if args.save and not args.output_dir:
        args.output_dir = RESULTS
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        run_worker(args)
        return 0
    reason = mpi_missing_reason() if max(args.ranks) > 1 else None
    if reason:
        raise SystemExit(f"bench_distributed: cannot start {max(args.ranks)} ranks: {reason}")
    command = " ".join(["python benchmarks/bench_distributed.py", *(sys.argv[1:] if argv is None else argv)])
    ranks = sorted(set(args.ranks))
    with tempfile.TemporaryDirectory(prefix="bench_distributed_") as scratch:
        rows = [measure(count, args, scratch) for count in ranks]
        settings = {"warmup": args.warmup, "steps": args.steps, "probe_repeats": args.probe_repeats,
                    "ranks": ranks, "quick": args.quick}
        report = {"meta": describe_machine(), "command": command, "settings": settings, "rows": rows,
                  "scaling_model_rows": scaling_rows(rows)}
        print(scaling_model.markdown_table(HEADER, [cells(row) for row in rows]))
        if args.output_dir:
            write_outputs(report, args.output_dir, scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
