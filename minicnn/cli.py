"""The command line: ``minicnn train | evaluate | summary | gradcheck`` (also ``python -m minicnn``).

``minicnn train`` with no options is the quick start's main job: a batch-normalised
VGG-11 at a quarter of its width learns the 4,000 training images of ``mnist5k``
and is tested on the 1,000 held out, on a laptop CPU, offline.

A user's mistake or the machine's limits never end in a traceback: each expected
failure is one line on stderr, what went wrong and what to do, with an exit status
of its own so that scripts can tell them apart (minicnn/cli_errors.py holds the
table; ``minicnn --help`` prints it).  ``--debug``, before or after the command,
prints the traceback too.  Anything else is a bug in minicnn, and its line says so.
"""
import argparse
import contextlib
import json
import math
import os
import time
import traceback

import numpy as np

from minicnn import cli_errors
from minicnn.cli_errors import (
    FAILURES,
    INTERRUPTED,
    READER_GONE,
    CheckpointError,
    CommandError,
    PathKindError,
    one_interrupt,
    say,
    silence_stdout,
)

# The main job's defaults, in one place: they are what the README promises.
DEFAULTS = dict(model="vgg11_bn", dataset="mnist5k", epochs=8, batch_size=64, optimizer="sgd", lr=0.01,
                momentum=0.9, weight_decay=5e-4, width=0.25, seed=0, output="runs/mnist5k-vgg11_bn")


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error on one line: the usage itself is one --help away."""

    def error(self, message):
        # Under mpiexec every rank parses the same line: rank 0 alone says what is wrong with it.
        line = f"{self.prog}: error: {message}; see {self.prog} --help\n"
        self.exit(2, line if _launch_rank() == 0 else None)


def _number(kind, what, accept):
    """An argparse type: ``kind(text)``, finite and accepted, else "expected {what}" (so --lr nan is refused)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, "a positive int", lambda value: value > 0)
_non_negative_int = _number(int, "an int >= 0", lambda value: value >= 0)
_positive_float = _number(float, "a positive finite number", lambda value: value > 0)
_non_negative_float = _number(float, "a finite number >= 0", lambda value: value >= 0)


def _input_size(text):
    try:
        sizes = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        sizes = ()
    if len(sizes) != 3 or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected CxHxW such as 3x224x224, got {text!r}")
    return sizes


def build_parser():
    # --debug on the main parser and on each command, so it goes before or after the command; SUPPRESS
    # keeps a command's unset flag from overwriting one given before it.
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="on an error, print the full traceback too")
    parser = _Parser(prog="minicnn", description="minicnn: train, inspect and check CNNs.", parents=[debug],
                     epilog="Exit status:" + (cli_errors.__doc__ or "").partition("Exit status:")[2],
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train a model on a dataset (defaults: the quick-start job)",
                                description="Train a model; writes a checkpoint, curves and a confusion matrix.",
                                parents=[debug])
    train.add_argument("--model", default=DEFAULTS["model"], help="a name from `minicnn summary --list`")
    train.add_argument("--dataset", default=DEFAULTS["dataset"],
                       choices=["mnist5k", "digits", "shapes", "mnist", "fashion_mnist", "cifar10"])
    train.add_argument("--data-root", default=None, help="folder holding MNIST/CIFAR files")
    train.add_argument("--download", action="store_true", help="fetch MNIST/CIFAR files if missing")
    train.add_argument("--epochs", type=_positive_int, default=DEFAULTS["epochs"],
                       help="the total to reach, counting the epochs a --resume checkpoint already holds")
    train.add_argument("--batch-size", type=_positive_int, default=DEFAULTS["batch_size"])
    train.add_argument("--optimizer", choices=["sgd", "adam", "adamw", "rmsprop"], default=DEFAULTS["optimizer"])
    train.add_argument("--lr", type=_positive_float, default=DEFAULTS["lr"])
    train.add_argument("--momentum", type=_non_negative_float, default=DEFAULTS["momentum"],
                       help="SGD/RMSprop momentum")
    train.add_argument("--weight-decay", type=_non_negative_float, default=DEFAULTS["weight_decay"])
    train.add_argument("--augment", action=argparse.BooleanOptionalAction, default=False,
                       help="random crops (and flips for non-digit data)")
    train.add_argument("--width", type=_positive_float, default=None,
                       help="width multiplier (width_mult) for CPU-sized variants of the models that have one: "
                            f"VGG, MobileNet, CIFAR ResNet/plain (default {DEFAULTS['width']})")
    train.add_argument("--device", default="cpu")
    train.add_argument("--seed", type=_non_negative_int, default=DEFAULTS["seed"])
    train.add_argument("--output", default=DEFAULTS["output"], help="folder for checkpoint and plots")
    train.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue from a checkpoint")
    train.add_argument("--sync-bn", action="store_true",
                       help="under mpiexec: batch norm with the global batch's statistics (SyncBatchNorm) "
                            "instead of each rank's own")

    evaluate = commands.add_parser("evaluate", help="evaluate a checkpoint on a dataset's test split",
                                   parents=[debug])
    evaluate.add_argument("checkpoint")
    evaluate.add_argument("--dataset", default=None, help="default: the dataset it was trained on")
    evaluate.add_argument("--data-root", default=None)
    evaluate.add_argument("--batch-size", type=_positive_int, default=256)
    evaluate.add_argument("--device", default="cpu")

    summary = commands.add_parser("summary", help="layer table: shapes, parameters, MACs, receptive field",
                                  parents=[debug])
    summary.add_argument("model", nargs="?", help="model name (see --list)")
    summary.add_argument("--input", type=_input_size, default=(3, 224, 224), metavar="CxHxW")
    summary.add_argument("--num-classes", type=_positive_int, default=1000)
    summary.add_argument("--list", action="store_true", help="list the model names and exit")

    gradcheck = commands.add_parser("gradcheck", help="check every op's backward against finite differences",
                                    parents=[debug])
    gradcheck.add_argument("--ops", default=None, help="comma-separated subset of the op names")
    gradcheck.add_argument("--device", default="cpu", help="cpu or cuda: where the ops run (float64 on both)")
    return parser


def main(argv=None):
    """Run one command line and return its exit status (see minicnn/cli_errors.py); never raises.

    ``argv=None`` means this process's own command line (``minicnn ...``): the process is about to end,
    so Ctrl-C stays ignored after it returns.  Given a list, the caller gets Ctrl-C back as it was.
    """
    command, debug = "minicnn", False
    with one_interrupt(process_ends_after=argv is None):
        try:
            try:
                args = build_parser().parse_args(argv)
            except SystemExit as exit_:  # --help, or a usage error argparse has printed
                return exit_.code or 0
            command, debug = f"minicnn {args.command}", getattr(args, "debug", False)
            try:
                # NumPy's overflow warnings come before a diverging loss, which fit then reports plainly.
                with contextlib.nullcontext() if debug else np.errstate(all="ignore"):
                    return COMMANDS[args.command](args)
            except BrokenPipeError:
                silence_stdout()
                return READER_GONE
            except Exception as error:  # noqa: BLE001  (every error becomes one line: FAILURES says which)
                failure = next(failure for failure in FAILURES if failure.covers(error))
                if debug:
                    traceback.print_exc()
                _end_every_rank(failure.line(command, error), failure.status)
                if _launch_rank() == 0:  # not joined yet: every rank failed the same way, rank 0 says so
                    say(failure.line(command, error))
                return failure.status
        except KeyboardInterrupt:
            if debug:
                traceback.print_exc()
            # Under mpiexec every rank gets Ctrl-C, but one waiting inside an allreduce never sees it: the
            # first to see it ends the job, and one "interrupted" is enough.
            _end_every_rank(f"{command}: interrupted", INTERRUPTED)
            if _launch_rank() == 0:
                say(f"{command}: interrupted")
            return INTERRUPTED


def _launch_rank():
    from minicnn.distributed.world import launch_rank

    return launch_rank()


def _end_every_rank(line, status):
    """Under mpiexec, a failing rank prints its line once and ends the whole job: no rank is left waiting.

    Before the ranks have joined (the options, the device, mpi4py itself) there is nothing to wait in,
    and every rank fails alike: then this returns, and rank 0 alone prints the line.
    """
    from minicnn import distributed

    if distributed.is_initialized() and distributed.world().size > 1:
        distributed.abort_with_message(line, status)


# --- summary -------------------------------------------------------------------
def _summary(args):
    import minicnn
    from minicnn import models

    if args.list:
        print("\n".join(models.list_models()))
        return 0
    if args.model is None:
        raise CommandError("give a model name, or --list to see them")
    model = models.get_model(args.model, num_classes=args.num_classes)
    print(minicnn.summary(model, args.input))
    return 0


# --- gradcheck -----------------------------------------------------------------
def _gradcheck(args):
    from minicnn.op_checks import OP_CHECKS, run_op_checks

    names = list(OP_CHECKS) if args.ops is None else [name.strip() for name in args.ops.split(",") if name.strip()]
    unknown = [name for name in names if name not in OP_CHECKS]
    if unknown:
        raise CommandError(f"unknown op {unknown[0]!r}; choose from {', '.join(OP_CHECKS)}")
    device = _device(args)
    results = run_op_checks(names, device=device)
    print(f"float64 gradient checks on {device}")
    width = max(len(name) for name in names)
    print(f"{'op':{width}s}  {'max abs error':>13s}  {'max rel error':>13s}  result")
    for row in results:
        print(f"{row['op']:{width}s}  {row['max_abs_error']:13.2e}  {row['max_rel_error']:13.2e}  "
              f"{'ok' if row['passed'] else 'FAILED'}")
    failed = sum(not row["passed"] for row in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


# --- train and evaluate --------------------------------------------------------
def _grey_or_colour(dataset_name):
    return 1 if dataset_name in ("mnist5k", "digits", "mnist", "fashion_mnist") else 3


def _transforms(dataset_name, augment):
    """(train transform, test transform): size to 32×32, scale to [0, 1], normalise; crops when augmenting."""
    from minicnn.data import transforms as T

    common = [T.ToTensor(), T.Resize(32)]
    normalise = T.Normalize([0.5] * _grey_or_colour(dataset_name), [0.5] * _grey_or_colour(dataset_name))
    train = list(common)
    if augment:
        train.append(T.RandomCrop(32, padding=2))
        if _grey_or_colour(dataset_name) == 3:  # a flipped digit is another symbol; a flipped shape is not
            train.append(T.RandomHorizontalFlip())
    return T.Compose(train + [normalise]), T.Compose(common + [normalise])


def _build_model(name, num_classes, in_channels, width):
    """``name`` built for this data: ``width`` and ``in_channels`` go to the builders that take them."""
    from minicnn import models

    options = {"num_classes": num_classes}
    if name in models.WIDTH_MULT_MODELS:
        options["width_mult"] = width
    if name in models.IN_CHANNELS_MODELS:
        options["in_channels"] = in_channels
    try:
        return models.get_model(name, **options)
    except TypeError as error:
        raise CommandError(f"model {name!r} cannot be built with {options}: {error}") from None


def _make_optimizer(args, parameters):
    from minicnn import optim

    if args.optimizer == "sgd":
        return optim.SGD(parameters, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    if args.optimizer == "adam":
        return optim.Adam(parameters, lr=args.lr, weight_decay=args.weight_decay)
    if args.optimizer == "adamw":
        return optim.AdamW(parameters, lr=args.lr, weight_decay=args.weight_decay)
    return optim.RMSprop(parameters, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)


def _device(args):
    """The --device as "cpu"/"cuda"; for cuda, the reason there is no GPU before any data is loaded."""
    from minicnn import cuda
    from minicnn.device import normalize_device

    device = normalize_device("--device", args.device)
    if device == "cuda":
        try:
            cuda.require("--device cuda")
        except RuntimeError as error:  # no GPU here: the user's choice to change, not a bug
            raise CommandError(str(error)) from None
    return device


def _expect_folder(option, path):
    """PathKindError now, rather than after minutes of training, when ``path`` is an existing file."""
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        raise PathKindError(f"{option} {path} is a file, not a folder")


def _expect_file(option, path):
    """PathKindError when ``path`` is a folder, naming the checkpoint inside it if there is one."""
    if os.path.isdir(path):
        inside = os.path.join(path, "last.npz")
        example = f" such as {inside}" if os.path.isfile(inside) else ""
        raise PathKindError(f"{option} {path} is a folder, not a checkpoint file{example}")


def _from_checkpoint(function, path, *args, **kwargs):
    """``function(path, ...)`` from minicnn.checkpoint; a file that is not a checkpoint for this model
    (not an .npz, another format, other keys or shapes) becomes a CheckpointError."""
    try:
        return function(path, *args, **kwargs)
    except (ValueError, KeyError) as error:
        message = str(error) if isinstance(error, ValueError) else f"{path} lacks {error}"
        raise CheckpointError(message) from error


def _join_ranks(args, device):
    """This process's communicator: several ranks under ``mpiexec -n N`` (N > 1), else this process alone.

    The ranks split the global --batch-size between them, so it must divide evenly.
    """
    from minicnn import distributed

    world = distributed.init(backend="nccl" if device == "cuda" else "auto")
    if args.batch_size % world.size:
        lower = args.batch_size // world.size * world.size
        higher = lower + world.size
        choices = f"{lower} or {higher}" if lower else f"{higher}"
        raise CommandError(f"--batch-size {args.batch_size} (the global batch) does not split evenly over "
                           f"{world.size} ranks; pass a multiple of {world.size}, such as {choices}")
    return world


def _loaders(train_set, test_set, args, world):
    """Train and test loaders; over several ranks each serves its rank's share (DistributedSampler)."""
    from minicnn.data import DataLoader
    from minicnn.distributed import DistributedSampler

    if world.size == 1:
        return (DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed),
                DataLoader(test_set, batch_size=256))
    # The same epoch order as one process with this seed; rank r serves every size-th image of it.
    train_sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed)
    test_sampler = DistributedSampler(test_set, shuffle=False, seed=0, pad=False)  # each image once
    return (DataLoader(train_set, batch_size=args.batch_size // world.size, sampler=train_sampler),
            DataLoader(test_set, batch_size=256, sampler=test_sampler))


def _train(args):
    device = _device(args)
    world = _join_ranks(args, device)
    report = print if world.rank == 0 else (lambda *_, **__: None)  # rank 0 speaks for the job
    _expect_folder("--output", args.output)
    _expect_folder("--data-root", args.data_root)
    if args.resume:
        _expect_file("--resume", args.resume)
    import minicnn
    from minicnn import models, optim, viz
    from minicnn.checkpoint import load_checkpoint
    from minicnn.data import load_dataset
    from minicnn.train import evaluate, fit

    minicnn.manual_seed(args.seed)
    width = DEFAULTS["width"] if args.width is None else args.width
    train_transform, test_transform = _transforms(args.dataset, args.augment)
    # --download: rank 0 fetches, the others wait and then read what it wrote.
    options = dict(root=args.data_root, download=args.download and world.rank == 0)
    if args.download and world.size > 1:
        if world.rank == 0:
            load_dataset(args.dataset, split="train", **options)
            load_dataset(args.dataset, split="test", **options)
        world.barrier()
        options["download"] = False
    train_set = load_dataset(args.dataset, split="train", transform=train_transform, **options)
    test_set = load_dataset(args.dataset, split="test", transform=test_transform, **options)
    in_channels = train_set.images.shape[-1]
    model = _build_model(args.model, len(train_set.classes), in_channels, width)
    if args.sync_bn:  # the same keys and parameters: checkpoints load with or without it
        from minicnn.distributed import SyncBatchNorm

        model = SyncBatchNorm.convert_sync_batchnorm(model)
    has_width = args.model in models.WIDTH_MULT_MODELS
    if args.width is not None and not has_width:
        report(f"minicnn train: --width does not apply to {args.model} (it has no width multiplier); "
              "training it at full width")
    optimizer = _make_optimizer(args, model.parameters())
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    train_loader, test_loader = _loaders(train_set, test_set, args, world)

    start_epoch, history = 0, None
    if args.resume:
        state = _from_checkpoint(load_checkpoint, args.resume, model, optimizer, scheduler,
                                 loader=train_loader)
        start_epoch, history = state["epoch"], state["history"]
        if start_epoch >= args.epochs:  # a finished run asked again: nothing to do, which is not a failure
            epochs = f"{start_epoch} epoch" + ("" if start_epoch == 1 else "s")
            report(f"minicnn train: {args.resume} already trained {epochs}; pass --epochs N with "
                   f"N > {start_epoch} to continue")
            return 0
        report(f"resuming {args.resume} after epoch {start_epoch}")
    if world.rank == 0:
        os.makedirs(args.output, exist_ok=True)
    config = dict(model=args.model, dataset=args.dataset, width=width, in_channels=int(in_channels),
                  num_classes=len(train_set.classes), classes=list(train_set.classes), seed=args.seed)
    parameters = sum(p.numel() for p in model.parameters())
    width_note = f"width {width}, " if has_width else ""
    ranks = f", {world.size} ranks of {args.batch_size // world.size} images" if world.size > 1 else ""
    report(f"minicnn train: {args.model} ({width_note}{parameters:,} parameters) on {args.dataset}: "
           f"{len(train_set)} train / {len(test_set)} test images, {args.epochs} epochs{ranks}")
    started = time.perf_counter()
    history = fit(model, train_loader, test_loader, optimizer=optimizer, epochs=args.epochs,
                  scheduler=scheduler, device=device, checkpoint_dir=args.output, start_epoch=start_epoch,
                  history=history, checkpoint_extra=config)
    seconds = time.perf_counter() - started
    result = evaluate(model, test_loader)
    if world.rank != 0:  # the plots, the history and the last line are rank 0's
        return 0
    viz.training_curves(history, save=os.path.join(args.output, "curves.png"))
    viz.confusion_matrix(result["confusion"], classes=train_set.classes,
                         save=os.path.join(args.output, "confusion.png"))
    with open(os.path.join(args.output, "history.json"), "w") as file:
        json.dump(dict(config=config, history=history.to_dict(), test_accuracy=result["accuracy"],
                       test_loss=result["loss"], seconds=seconds, ranks=world.size), file, indent=1)
    print(f"test accuracy {result['accuracy']:.2%} (loss {result['loss']:.4f}) after {seconds:.0f} s; "
          f"checkpoint, curves.png and confusion.png in {args.output}/")
    return 0


def _evaluate(args):
    device = _device(args)
    import minicnn
    from minicnn.checkpoint import load_checkpoint, read_checkpoint_extra
    from minicnn.data import DataLoader, load_dataset
    from minicnn.train import evaluate

    _expect_file("checkpoint", args.checkpoint)
    _expect_folder("--data-root", args.data_root)
    config = _from_checkpoint(read_checkpoint_extra, args.checkpoint)
    missing = [key for key in ("model", "dataset", "num_classes", "in_channels", "width")
               if key not in (config or {})]
    if missing:
        raise CheckpointError(f"{args.checkpoint} does not say its {', '.join(missing)} "
                              f"(not written by minicnn train?)")
    dataset = args.dataset or config["dataset"]
    _, test_transform = _transforms(dataset, augment=False)
    test_set = load_dataset(dataset, split="test", transform=test_transform, root=args.data_root)
    model = _build_model(config["model"], config["num_classes"], config["in_channels"], config["width"])
    minicnn.manual_seed(0)
    _from_checkpoint(load_checkpoint, args.checkpoint, model)
    result = evaluate(model.to(device), DataLoader(test_set, batch_size=args.batch_size))
    if _launch_rank() != 0:  # under mpiexec every rank evaluated the whole set: rank 0 reports it
        return 0
    print(f"{config['model']} on {dataset} test ({len(test_set)} images): accuracy {result['accuracy']:.2%}, "
          f"loss {result['loss']:.4f}")
    confusion = np.asarray(result["confusion"])
    print("confusion matrix (rows: true class, columns: predicted):")
    print(np.array2string(confusion, max_line_width=200))
    return 0


COMMANDS = {"train": _train, "evaluate": _evaluate, "summary": _summary, "gradcheck": _gradcheck}
