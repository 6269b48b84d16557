"""The CUDA kernels' names, said once: launch.py's table against the entry points of kernels/*.cu.

launch.py names every kernel with the file that defines it (``KERNELS[family][op]``);
each file defines ``extern "C"`` entry points ``<op>_f32`` and ``<op>_f64``.  These
tests read every file after macro expansion (``g++ -E``, as the CUDA emulator does:
most entry points are stamped out by a macro for both dtypes) and check that the
two sides name the same set, each kernel in its own file, so a renamed kernel, a
forgotten float64 twin or a stale table entry fails here, without a GPU.
"""
import re
import shutil
from pathlib import Path

import pytest
from emulator import CXX, entry_points

from minicnn.backend.cuda.launch import FLOAT_SUFFIXES, KERNELS, LAUNCH, kernel_family
from minicnn.backend.cuda.launch import entry_points as named_entry_points

REPO = Path(__file__).resolve().parents[2]
KERNEL_FILES = sorted((REPO / "kernels").glob("*.cu"))


@pytest.fixture(scope="module")
def defined():
    """{entry point: family} for every ``extern "C"`` kernel of kernels/*.cu."""
    if shutil.which(CXX) is None:
        pytest.skip(f"reading the entry points needs {CXX}: its preprocessor expands the macros")
    return {name: path.stem for path in KERNEL_FILES for name in entry_points(path)}


def test_the_kernel_files_define_exactly_the_kernels_launch_py_names(defined):
    named = named_entry_points()
    problems = [f"{name}: named in launch.py for kernels/{family}.cu, which does not define it"
                for name, family in sorted(named.items()) if defined.get(name) != family]
    problems += [f"{name}: defined in kernels/{family}.cu but not named in minicnn/backend/cuda/launch.py"
                 for name, family in sorted(defined.items()) if name not in named]
    assert not problems, "\n".join(problems)


def test_every_floating_point_kernel_has_float32_and_float64_entry_points(defined):
    suffixes = {}
    for name in defined:
        op, _, suffix = name.rpartition("_")
        suffixes.setdefault(op, set()).add(suffix)
    for op, found in sorted(suffixes.items()):
        if found & set(FLOAT_SUFFIXES):
            assert found == set(FLOAT_SUFFIXES), f"{op}: entry points {sorted(found)}, expected f32 and f64"
        assert op in LAUNCH, f"{op}: a kernels/*.cu file defines it, launch.py does not name it"


def test_each_kernel_file_is_in_the_table_and_each_family_is_a_file():
    assert {path.stem for path in KERNEL_FILES} == set(KERNELS)
    assert all(kernel_family(op) in KERNELS for op in LAUNCH)


def test_every_floating_point_kernel_is_launched_by_a_wrapper():
    """Each name in the table appears, quoted, in a CuPy wrapper: no table entry is dead."""
    wrappers = "\n".join(path.read_text() for path in (REPO / "minicnn" / "backend" / "cuda").glob("*.py")
                         if path.name != "launch.py")
    unused = [op for op, entry in LAUNCH.items()
              if set(entry.get("dtypes", FLOAT_SUFFIXES)) == set(FLOAT_SUFFIXES)
              and not re.search(rf"[\"']{op}[\"']", wrappers)]
    assert not unused, f"launch.py names kernels that no wrapper in minicnn/backend/cuda/ launches: {unused}"


def test_an_unknown_kernel_is_named_in_the_error():
    with pytest.raises(KeyError, match="no CUDA kernel 'relu_sideways' in minicnn/backend/cuda/launch.py"):
        kernel_family("relu_sideways")
