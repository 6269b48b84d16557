"""Proof without a GPU that every CUDA kernel compiles, and that the wheel carries them.

* NVRTC, the compiler CuPy's ``RawModule`` uses, compiles every ``kernels/*.cu``
  for compute_80 (A100) and compute_90 (H100).  NVRTC only turns CUDA C into
  PTX, so it runs on any Linux machine: the ``nvidia-cuda-nvrtc`` wheel (in the
  ``test`` extra) ships ``libnvrtc.so`` and we call it through ctypes.
* ``nvcc -ptx -arch=sm_80`` compiles them too, where nvcc exists.
* Each file exports ``<op>_f32`` and ``<op>_f64`` for every op, and every op in
  ``launch.py``'s table has them in the file the table names (test_cuda_names.py
  checks the same without NVRTC, the other way round too).
* ``pip wheel .`` puts the .cu files inside the package, where the loader finds them.

A kernel with a syntax error fails here, with the compiler's log in the message.
"""
import ctypes
import glob
import os
import re
import shutil
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KERNEL_FILES = sorted(Path(p) for p in glob.glob(str(REPO / "kernels" / "*.cu")))
ARCHITECTURES = ["compute_80", "compute_90"]


# --- NVRTC through ctypes ------------------------------------------------------
class NVRTCError(RuntimeError):
    """A compilation failed; the message holds NVRTC's log."""


def find_libnvrtc():
    """Path of libnvrtc.so from the nvidia-cuda-nvrtc wheel (nvidia/cu13/lib or nvidia/cuda_nvrtc/lib)."""
    roots = [p for p in sys.path if p.endswith("site-packages")]
    try:
        roots += site.getsitepackages()
    except AttributeError:
        pass
    candidates = []
    for root in dict.fromkeys(roots):
        candidates += glob.glob(os.path.join(root, "nvidia", "**", "lib", "libnvrtc.so*"), recursive=True)
    candidates += glob.glob("/usr/local/cuda*/lib64/libnvrtc.so*")
    # The compiler library itself, not libnvrtc-builtins or libnvrtc.alt.
    candidates = [c for c in candidates if re.search(r"/libnvrtc\.so(\.\d+)*$", c)]
    return min(candidates) if candidates else None


class NVRTC:
    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        self.lib.nvrtcGetErrorString.restype = ctypes.c_char_p
        self.lib.nvrtcGetErrorString.argtypes = [ctypes.c_int]

    def _check(self, result, call):
        if result != 0:
            raise NVRTCError(f"{call} failed: {self.lib.nvrtcGetErrorString(result).decode()}")

    def version(self):
        major, minor = ctypes.c_int(), ctypes.c_int()
        self._check(self.lib.nvrtcVersion(ctypes.byref(major), ctypes.byref(minor)), "nvrtcVersion")
        return major.value, minor.value

    def compile(self, source, name, options):
        """CUDA C ``source`` → PTX text; NVRTCError with the compiler's log on failure."""
        program = ctypes.c_void_p()
        self._check(self.lib.nvrtcCreateProgram(ctypes.byref(program), source.encode(), name.encode(),
                                                0, None, None), "nvrtcCreateProgram")
        try:
            encoded = [option.encode() for option in options]
            result = self.lib.nvrtcCompileProgram(program, len(encoded), (ctypes.c_char_p * len(encoded))(*encoded))
            log_size = ctypes.c_size_t()
            self._check(self.lib.nvrtcGetProgramLogSize(program, ctypes.byref(log_size)), "nvrtcGetProgramLogSize")
            log = ctypes.create_string_buffer(log_size.value)
            self._check(self.lib.nvrtcGetProgramLog(program, log), "nvrtcGetProgramLog")
            if result != 0:
                raise NVRTCError(f"NVRTC could not compile {name} with {' '.join(options)} "
                                 f"({self.lib.nvrtcGetErrorString(result).decode()}):\n"
                                 f"{log.value.decode(errors='replace')}")
            ptx_size = ctypes.c_size_t()
            self._check(self.lib.nvrtcGetPTXSize(program, ctypes.byref(ptx_size)), "nvrtcGetPTXSize")
            ptx = ctypes.create_string_buffer(ptx_size.value)
            self._check(self.lib.nvrtcGetPTX(program, ptx), "nvrtcGetPTX")
            return ptx.value.decode()
        finally:
            self.lib.nvrtcDestroyProgram(ctypes.byref(program))


def ptx_entry_points(ptx):
    """Names of the ``__global__`` kernels in PTX text (``.entry name(``)."""
    return re.findall(r"\.entry\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(", ptx)


@pytest.fixture(scope="module")
def nvrtc():
    path = find_libnvrtc()
    if path is None:
        pytest.skip("NVRTC not found: pip install nvidia-cuda-nvrtc (part of minicnn[test]) to compile the kernels")
    return NVRTC(path)


_ptx_cache = {}


def compile_kernel_file(nvrtc, path, architecture):
    key = (path, architecture)
    if key not in _ptx_cache:
        # As CuPy's RawModule compiles them: no options but the architecture of the GPU.
        _ptx_cache[key] = nvrtc.compile(path.read_text(), path.name, [f"--gpu-architecture={architecture}"])
    return _ptx_cache[key]


# --- the harness itself can fail -------------------------------------------------
def test_nvrtc_reports_a_syntax_error_with_its_log(nvrtc):
    assert nvrtc.version()[0] >= 11
    with pytest.raises(NVRTCError, match=r"broken\.cu\(2\): error"):
        nvrtc.compile('extern "C" __global__ void f(float* y) {\n  y[0] = ;\n}\n', "broken.cu",
                      ["--gpu-architecture=compute_80"])


def test_nvrtc_rejects_a_host_header(nvrtc):
    # Why the kernels include nothing: NVRTC has no host C library.
    with pytest.raises(NVRTCError, match="stdio"):
        nvrtc.compile('#include <stdio.h>\nextern "C" __global__ void f() {}\n', "host.cu",
                      ["--gpu-architecture=compute_80"])


def test_entry_points_are_read_from_ptx(nvrtc):
    source = ('template <typename T> __device__ void body(T* y) { y[threadIdx.x] = T(1); }\n'
              'extern "C" __global__ void ones_f32(float* y) { body(y); }\n'
              'extern "C" __global__ void ones_f64(double* y) { body(y); }\n')
    assert sorted(ptx_entry_points(nvrtc.compile(source, "ones.cu", ["--gpu-architecture=compute_90"]))) == [
        "ones_f32", "ones_f64"]


# --- every kernel file ------------------------------------------------------------
def test_there_are_kernel_files():
    assert KERNEL_FILES, f"no CUDA kernels found under {REPO / 'kernels'}"


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("path", KERNEL_FILES, ids=[p.name for p in KERNEL_FILES])
def test_kernel_file_compiles_under_nvrtc(nvrtc, path, architecture):
    ptx = compile_kernel_file(nvrtc, path, architecture)
    assert ptx_entry_points(ptx), f"{path.name}: no extern \"C\" __global__ entry points in the PTX"


@pytest.mark.parametrize("path", KERNEL_FILES, ids=[p.name for p in KERNEL_FILES])
def test_kernel_file_has_float32_and_float64_entry_points(nvrtc, path):
    entries = set(ptx_entry_points(compile_kernel_file(nvrtc, path, "compute_80")))
    # Typed names: <op>_f32 / <op>_f64, or an integer suffix for a kernel on integers (philox4x32_u32).
    odd = sorted(e for e in entries if not re.search(r"_(f32|f64|[iu](32|64))$", e))
    assert not odd, f"{path.name}: entry points must end in their dtype (<op>_f32, <op>_f64 ...), found {odd}"
    ops_f32 = {e[:-4] for e in entries if e.endswith("_f32")}
    ops_f64 = {e[:-4] for e in entries if e.endswith("_f64")}
    assert ops_f64 <= ops_f32, f"{path.name}: float64 without float32 for {sorted(ops_f64 - ops_f32)}"
    missing = sorted(ops_f32 - ops_f64)
    assert not missing, f"{path.name}: no float64 entry point for {missing}"


@pytest.mark.parametrize("path", KERNEL_FILES, ids=[p.name for p in KERNEL_FILES])
def test_kernel_file_includes_no_host_header(path):
    includes = re.findall(r"^\s*#\s*include\s*[<\"]([^>\"]+)", path.read_text(), flags=re.MULTILINE)
    assert not includes, f"{path.name} includes {includes}: NVRTC has no host headers"


def test_every_launch_entry_has_kernels(nvrtc):
    launch_file = REPO / "minicnn" / "backend" / "cuda" / "launch.py"
    if not launch_file.exists():
        pytest.skip("minicnn/backend/cuda/launch.py does not exist yet")
    from minicnn.backend.cuda.launch import LAUNCH

    entries = set()
    for path in KERNEL_FILES:
        entries |= set(ptx_entry_points(compile_kernel_file(nvrtc, path, "compute_80")))
    ops = {entry.rsplit("_", 1)[0] for entry in entries}
    missing = sorted(op for op in LAUNCH if op not in ops)
    assert not missing, f"launch.py configures kernels that no kernels/*.cu defines: {missing}"


def test_every_kernel_the_cupy_backend_launches_is_in_its_file(nvrtc):
    """launch.py names each kernel once, with its file: that file's PTX has both typed entry points."""
    from minicnn.backend.cuda.launch import entry_points

    problems = []
    for name, family in sorted(entry_points().items()):
        path = REPO / "kernels" / f"{family}.cu"
        if not path.exists():
            problems.append(f"{name}: kernels/{family}.cu does not exist")
        elif name not in ptx_entry_points(compile_kernel_file(nvrtc, path, "compute_80")):
            problems.append(f"{name}: kernels/{family}.cu has no such entry point")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("path", KERNEL_FILES, ids=[p.name for p in KERNEL_FILES])
def test_kernel_file_compiles_with_nvcc(path, tmp_path):
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc")
                                    else None)
    if nvcc is None:
        pytest.skip("nvcc is not installed: only the NVRTC compile ran")
    result = subprocess.run([nvcc, "-ptx", "-arch=sm_80", "-o", str(tmp_path / (path.stem + ".ptx")), str(path)],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"nvcc -ptx -arch=sm_80 {path.name} failed:\n{result.stderr}"
    assert ".entry" in (tmp_path / (path.stem + ".ptx")).read_text()


# --- packaging --------------------------------------------------------------------
def test_the_wheel_carries_the_kernels(tmp_path):
    """``pip wheel .`` (what ``pip install .`` builds) puts kernels/*.cu in minicnn/kernels/."""
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "setup.py", "README.md"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(REPO / "minicnn", source / "minicnn", ignore=ignore)
    shutil.copytree(REPO / "kernels", source / "kernels", ignore=ignore)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, check=False,
    )
    assert result.returncode == 0, f"pip wheel failed:\n{result.stdout}\n{result.stderr}"
    (wheel,) = (tmp_path / "dist").glob("minicnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {f"minicnn/kernels/{p.name}" for p in KERNEL_FILES}
    assert expected, "no kernels/*.cu to package"
    assert expected <= names, f"the wheel lacks {sorted(expected - names)}"
    assert "minicnn/backend/cuda/kernels.py" in names

    # Installed (unzipped, as pip does), the loader reads the sources from inside the package.
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    code = ("from minicnn.backend.cuda.runtime import kernel_directory, kernel_source; "
            "print(kernel_directory()); print(len(kernel_source('softmax')))")
    env = dict(os.environ, PYTHONPATH=str(installed))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    directory, length = result.stdout.rsplit("\n", 2)[:2]
    assert str(installed / "minicnn" / "kernels") in directory, f"the installed package read {directory}"
    assert int(length) == len((REPO / "kernels" / "softmax.cu").read_text())
