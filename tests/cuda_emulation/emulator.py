"""Run the unmodified CUDA C kernels of kernels/*.cu on the CPU (test code only).

How it works:

1. ``g++ -E`` lists the ``extern "C" __global__`` entry points of a .cu file
   (after macros are expanded, so kernels stamped out by a macro are found too).
2. The file is copied into a cache directory with one rewrite:
   ``extern __shared__ T name[];`` becomes ``T* const name = (T*)emu::dynamic_shared();``
   (dynamic shared memory is a buffer owned by the launch).  For each entry point
   a tiny C launcher is appended, then it is compiled with
   ``g++ -O1 -std=c++20 -pthread -shared -fPIC -fno-gnu-unique -include cuda_emu.h`` into a .so whose
   name is the hash of the source, the header and the flags: compiled once, reused.
3. ``launch(kernel, grid, block, args, shared_mem)`` calls it through ctypes.  The
   kernel's C signature comes back from the .so, so a wrong argument count, a
   float64 array passed as ``float*`` or a non-contiguous array is a TypeError,
   not garbage.  Every array is copied into a guarded buffer (0xFF bytes — NaN
   for floats — on both sides): a kernel that writes outside its array fails the
   launch, one that reads outside it reads NaN.

Example::

    emu = Emulator()
    emu.launch("relu_forward_f32", grid=(4,), block=(256,), args=[x, y, np.int64(x.size)])
"""
import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
KERNELS_DIR = REPO / "kernels"
HEADER = HERE / "cuda_emu.h"
CXX = os.environ.get("CXX", "g++")
# -fno-gnu-unique: g++ would otherwise merge the header's inline variables (emu::state, threadIdx, ...)
# across every library loaded in the process, and the two schedulers' LaunchStates differ.
CXXFLAGS = ["-O1", "-std=c++20", "-pthread", "-shared", "-fPIC", "-fno-gnu-unique", "-w"]
GUARD_BYTES = 256

_SCALAR_CTYPES = {
    "f": ctypes.c_float, "d": ctypes.c_double, "?": ctypes.c_bool, "c": ctypes.c_char,
    "b": ctypes.c_byte, "B": ctypes.c_ubyte, "h": ctypes.c_short, "H": ctypes.c_ushort,
    "i": ctypes.c_int, "I": ctypes.c_uint, "l": ctypes.c_long, "L": ctypes.c_ulong,
    "q": ctypes.c_longlong, "Q": ctypes.c_ulonglong,
}
_POINTEE_DTYPES = {
    "f": {np.dtype(np.float32)}, "d": {np.dtype(np.float64)}, "?": {np.dtype(np.bool_)},
    "c": {np.dtype(np.int8), np.dtype(np.uint8)}, "b": {np.dtype(np.int8)}, "B": {np.dtype(np.uint8)},
    "h": {np.dtype(np.int16)}, "H": {np.dtype(np.uint16)}, "i": {np.dtype(np.int32)},
    "I": {np.dtype(np.uint32)}, "l": {np.dtype(np.int64)}, "L": {np.dtype(np.uint64)},
    "q": {np.dtype(np.int64)}, "Q": {np.dtype(np.uint64)},
}
_EXTERN_SHARED = re.compile(
    r"extern\s+__shared__\s+(?:__align__\s*\(\s*\d+\s*\)\s*)?(?P<type>[A-Za-z_][\w\s:]*?)\s*"
    r"(?:__align__\s*\(\s*\d+\s*\)\s*)?(?P<name>[A-Za-z_]\w*)\s*\[\s*\]\s*;"
)
_GLOBAL_MARK = "__EMU_GLOBAL_MARK__"


class EmulationError(RuntimeError):
    """A .cu file that g++ cannot compile, or a launch the emulator refuses."""


def default_cache_dir():
    return Path(os.environ.get("MINICNN_EMU_CACHE", Path(tempfile.gettempdir()) / f"minicnn_cuda_emu_{os.getuid()}"))


def entry_points(cu_path, preprocessed=None):
    """Names of the ``extern "C" __global__`` functions a .cu file defines (after preprocessing)."""
    text = preprocessed if preprocessed is not None else _preprocess(cu_path)
    names = []
    # extern "C" __global__ void name(   — the attribute order may vary a little
    for match in re.finditer(
        r'extern\s*"C"\s*((?:\w+\s+)*?)' + _GLOBAL_MARK + r"\s+(?:\w+\s+)*?void\s+(?:\w+\s+)*?(\w+)\s*\(", text
    ):
        names.append(match.group(2))
    # extern "C" { ... __global__ void name( ... }
    for block in re.finditer(r'extern\s*"C"\s*\{', text):
        depth, pos = 1, block.end()
        start = pos
        while depth and pos < len(text):
            depth += {"{": 1, "}": -1}.get(text[pos], 0)
            pos += 1
        body = text[start:pos]
        # only the functions at the block's top level
        level, top = 0, []
        for ch in body:
            if ch == "{":
                level += 1
            if level == 0:
                top.append(ch)
            if ch == "}":
                level -= 1
        for match in re.finditer(_GLOBAL_MARK + r"\s+(?:\w+\s+)*?void\s+(?:\w+\s+)*?(\w+)\s*\(", "".join(top)):
            names.append(match.group(1))
    return list(dict.fromkeys(names))


def _preprocess(cu_path):
    cmd = [CXX, "-E", "-P", "-x", "c++", "-std=c++20", f"-D__global__={_GLOBAL_MARK}",
           "-D__launch_bounds__(...)=", f"-I{Path(cu_path).parent}", str(cu_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise EmulationError(f"g++ -E failed on {cu_path}:\n{proc.stderr}")
    return proc.stdout


def _rewrite_extern_shared(source):
    def replace(match):
        newlines = "\n" * match.group(0).count("\n")  # keep line numbers of error messages right
        type_ = " ".join(match.group("type").split())
        name = match.group("name")
        return f"{type_}* const {name} = reinterpret_cast<{type_}*>(emu::dynamic_shared());{newlines}"

    return _EXTERN_SHARED.sub(replace, source)


class Kernel:
    """One entry point of a compiled file: checks and marshals arguments, then launches."""

    def __init__(self, library, name, path):
        self.name = name
        self.path = path
        signature = getattr(library, f"emu_signature_{name}")
        signature.restype = ctypes.c_char_p
        text = signature().decode()
        self.signature = text.split(",") if text else []
        self._launch = getattr(library, f"emu_launch_{name}")
        self._launch.restype = ctypes.c_int
        self._launch.argtypes = [ctypes.POINTER(ctypes.c_uint), ctypes.c_ulonglong, ctypes.POINTER(ctypes.c_void_p)]

    def __repr__(self):
        return f"<emulated kernel {self.name}({', '.join(self.signature)}) from {self.path.name}>"

    def __call__(self, grid, block, args, shared_mem=0):
        grid, block = _dim3(grid, "grid"), _dim3(block, "block")
        if len(args) != len(self.signature):
            raise TypeError(f"{self.name} takes {len(self.signature)} arguments ({', '.join(self.signature)}), "
                            f"got {len(args)}")
        keep_alive, pointers, guarded = [], [], []
        for index, (code, value) in enumerate(zip(self.signature, args)):
            if code.startswith("*"):
                const = code.startswith("*c")
                pointee = code[2:] if const else code[1:]
                storage = self._pointer_arg(index, pointee, const, value, guarded)
            elif code in _SCALAR_CTYPES:
                if isinstance(value, np.ndarray) and value.ndim > 0:
                    raise TypeError(f"{self.name}: argument {index} is a scalar ({code}), got an array")
                storage = _SCALAR_CTYPES[code](value.item() if isinstance(value, np.generic) else value)
            else:
                raise TypeError(f"{self.name}: argument {index} has a type the emulator cannot pass ({code})")
            keep_alive.append(storage)
            pointers.append(ctypes.cast(ctypes.pointer(storage), ctypes.c_void_p))
        dims = (ctypes.c_uint * 6)(*grid, *block)
        arg_array = (ctypes.c_void_p * max(len(pointers), 1))(*[p.value for p in pointers])
        status = self._launch(dims, int(shared_mem), arg_array)
        if status:
            reason = {1: "block must have 1..1024 threads", 2: "empty grid", 3: "too much shared memory",
                      4: "deadlock: the block's threads wait at barriers that can never complete"}[status]
            raise EmulationError(f"{self.name}: launch with grid={grid} block={block} shared_mem={shared_mem} "
                                 f"failed: {reason}")
        for index, array, buffer, const in guarded:
            nbytes = array.nbytes
            raw = buffer.view(np.uint8)
            if not (np.all(raw[:GUARD_BYTES] == 0xFF) and np.all(raw[GUARD_BYTES + nbytes:] == 0xFF)):
                raise EmulationError(f"{self.name} wrote outside argument {index} "
                                     f"(shape {array.shape}, dtype {array.dtype}) with grid={grid} block={block}")
            inside = raw[GUARD_BYTES:GUARD_BYTES + nbytes].view(array.dtype).reshape(array.shape)
            if const:
                if not np.array_equal(inside.view(np.uint8), np.ascontiguousarray(array).view(np.uint8)):
                    raise EmulationError(f"{self.name} modified its const argument {index}")
            else:
                array[...] = inside

    def _pointer_arg(self, index, pointee, const, value, guarded):
        if value is None:
            return ctypes.c_void_p(None)
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{self.name}: argument {index} is a pointer ({pointee}*), pass a NumPy array or None")
        if pointee != "v" and value.dtype not in _POINTEE_DTYPES.get(pointee, set()):
            raise TypeError(f"{self.name}: argument {index} is {pointee}*, got an array of {value.dtype}")
        if not value.flags.c_contiguous:
            raise TypeError(f"{self.name}: argument {index} must be C-contiguous")
        if not const and not value.flags.writeable:
            raise TypeError(f"{self.name}: argument {index} is written by the kernel but the array is read-only")
        if value.size == 0:
            # CuPy hands a kernel a null pointer for an empty array, so a read of it faults on a GPU
            # (and poisons the CUDA context). Do the same: a segfault here names the test (faulthandler),
            # where guard bytes would let the read pass unseen, since nothing of an empty output is compared.
            return ctypes.c_void_p(None)
        buffer = np.full(GUARD_BYTES * 2 + value.nbytes, 0xFF, dtype=np.uint8)
        buffer[GUARD_BYTES:GUARD_BYTES + value.nbytes] = value.reshape(-1).view(np.uint8)
        guarded.append((index, value, buffer, const))
        return ctypes.c_void_p(buffer.ctypes.data + GUARD_BYTES)


SCHEDULERS = {"threads": [], "fibers": ["-DEMU_FIBERS"]}


class Emulator:
    """Compiles kernels/*.cu for the CPU on demand and launches their entry points by name.

    ``scheduler="threads"`` runs each CUDA thread as a std::thread (barriers are
    std::barrier); ``"fibers"`` runs them as fibers on one OS thread in a fixed
    order, an order of magnitude faster where kernels synchronise a lot.
    """

    def __init__(self, kernels_dir=KERNELS_DIR, cache_dir=None, scheduler="threads"):
        if shutil.which(CXX) is None:
            raise EmulationError(f"{CXX} not found: the CUDA emulation needs a C++20 compiler")
        if scheduler not in SCHEDULERS:
            raise ValueError(f"Emulator: scheduler must be one of {sorted(SCHEDULERS)}, got {scheduler!r}")
        self.scheduler, self.flags = scheduler, [*CXXFLAGS, *SCHEDULERS[scheduler]]
        self.kernels_dir = Path(kernels_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        self._modules = {}  # path -> {name: Kernel}
        self._index = None  # kernel name -> path

    def module(self, cu_path):
        """All entry points of one .cu file, compiled (or taken from the cache): {name: Kernel}."""
        path = Path(cu_path).resolve()
        if path not in self._modules:
            self._modules[path] = self._compile(path)
        return self._modules[path]

    def kernel(self, name):
        if self._index is None:
            self._index = {}
            for path in sorted(self.kernels_dir.glob("*.cu")):
                for entry in entry_points(path):
                    self._index.setdefault(entry, path.resolve())
        if name not in self._index:
            raise KeyError(f"no kernel named {name!r} in {self.kernels_dir}/*.cu")
        return self.module(self._index[name])[name]

    def launch(self, kernel_name, grid, block, args, shared_mem=0):
        """Launch ``kernel_name`` (found in kernels/*.cu) as ``kernel<<<grid, block, shared_mem>>>(*args)``."""
        self.kernel(kernel_name)(grid, block, args, shared_mem)

    def launch_op(self, op, work, kernel_name, args):
        """Launch with the configuration the CuPy backend uses: ``LAUNCH[op]`` for these work sizes."""
        from minicnn.backend.cuda.launch import launch_config

        grid, block, shared_mem = launch_config(op, *work)
        self.launch(kernel_name, grid, block, args, shared_mem)

    def _compile(self, path):
        source = path.read_text()
        names = entry_points(path)
        if not names:
            raise EmulationError(f'{path} defines no extern "C" __global__ kernels')
        key = hashlib.sha256()
        headers = [header.read_text() for header in sorted(HERE.glob("*.h"))]  # cuda_emu.h and its schedulers
        for part in (source, *headers, " ".join([CXX, *self.flags]), Path(__file__).read_text()):
            key.update(part.encode())
        stem = f"{path.stem}-{key.hexdigest()[:16]}"
        library_path = self.cache_dir / f"{stem}.so"
        if not library_path.exists():
            rewritten = self.cache_dir / f"{stem}.{os.getpid()}.cu"  # per process: parallel runs never collide
            rewritten.write_text(f'#line 1 "{path}"\n' + _rewrite_extern_shared(source))
            launchers = [f'#include "{rewritten}"\n']
            for name in names:
                launchers.append(
                    f'extern "C" const char* emu_signature_{name}() {{ return emu::signature(&{name}); }}\n'
                    f'extern "C" int emu_launch_{name}(const unsigned int* dims, unsigned long long shared_bytes,'
                    f" void** args) {{\n"
                    f"    return emu::launch(dims, shared_bytes, [args] {{ emu::call(&{name}, args); }});\n}}\n"
                )
            wrapper = self.cache_dir / f"{stem}.{os.getpid()}.cpp"
            wrapper.write_text("".join(launchers))
            partial = self.cache_dir / f"{stem}.{os.getpid()}.so.tmp"
            cmd = [CXX, *self.flags, "-include", str(HEADER), f"-I{path.parent}", str(wrapper), "-o", str(partial)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            wrapper.unlink()
            rewritten.unlink()
            if proc.returncode:
                raise EmulationError(f"g++ could not compile {path.name} for the CPU emulation:\n{proc.stderr}")
            os.replace(partial, library_path)  # atomic: parallel test runs never load a half-written file
        library = ctypes.CDLL(str(library_path))
        return {name: Kernel(library, name, path) for name in names}


def _dim3(value, what):
    if isinstance(value, (int, np.integer)):
        value = (int(value),)
    value = tuple(int(v) for v in value)
    if not 1 <= len(value) <= 3 or any(v < 1 for v in value):
        raise EmulationError(f"{what} must be 1 to 3 positive sizes, got {value}")
    return value + (1,) * (3 - len(value))
