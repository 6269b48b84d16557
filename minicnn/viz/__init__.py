"""Pictures of a training run and of what a CNN learned, drawn with matplotlib.

* ``training_curves(history)``: loss and accuracy per epoch, train against validation;
* ``filters(model)``: the first conv layer's filters, one small image each;
* ``feature_maps(model, image)``: what one image looks like after each stage of a model;
* ``confusion_matrix(matrix, classes)``: which classes the model mixes up;
* ``benchmark_bars(results)``: minicnn's speed relative to PyTorch, per benchmark case;
* ``im2col_picture(image_or_shape, kernel_size)``: a convolution's windows and the column matrix they become;
* ``cpu_torch_times(cpu_ops)`` and ``cpu_gpu_times(gpu_ops)``: the recorded benchmarks of
  ``benchmarks/results/`` (read by ``load_benchmark_results``), CPU against PyTorch and CPU against GPU.

Each function returns a ``matplotlib.figure.Figure`` and, given ``save="runs/curves.png"``, also writes it
as a PNG (creating the folder).

Headless-safe by construction: the figures are built with matplotlib's object API
(``Figure()``, ``figure.add_subplot``), never with ``pyplot``.  pyplot keeps global state and picks a GUI
backend, which needs a display, so ``plt.figure()`` on a server or in CI can fail or hang, and figures pile
up in memory until closed.  A bare ``Figure`` belongs to no window and no backend: ``figure.savefig``
renders through the Agg canvas (matplotlib's C++ rasteriser) whatever ``MPLBACKEND`` says, and the
figure is freed like any Python object.  Jupyter still shows a returned Figure inline (it renders it to
PNG itself), and ``plt.show()`` is never called.

>>> from minicnn import viz
>>> figure = viz.confusion_matrix(result["confusion"], classes=dataset.classes, save="runs/confusion.png")
"""
from minicnn.viz.activations import feature_maps
from minicnn.viz.benchmarks import benchmark_bars
from minicnn.viz.confusion import confusion_matrix
from minicnn.viz.conv_filters import filters
from minicnn.viz.curves import training_curves
from minicnn.viz.device_benchmarks import cpu_gpu_rows, cpu_gpu_times, cpu_torch_times, load_benchmark_results
from minicnn.viz.im2col import im2col_picture

__all__ = ["benchmark_bars", "confusion_matrix", "cpu_gpu_rows", "cpu_gpu_times", "cpu_torch_times", "feature_maps",
           "filters", "im2col_picture", "load_benchmark_results", "training_curves"]
