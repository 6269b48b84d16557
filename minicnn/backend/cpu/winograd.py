"""Winograd F(2×2, 3×3): a 3×3 stride-1 convolution with 2.25× fewer multiplications (Lavin & Gray, 2015).

Each 2×2 block of output needs a 4×4 tile d of padded input (tiles step by 2, so
neighbours overlap by 2).  With the 3×3 filter g:
    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A        # 16 multiplications instead of 36
Summed over input channels, the elementwise product becomes 16 matrix products,
one per tile position (ξ, ν):   M[ξν] = U[ξν] · V[ξν]   (OC, C) · (C, P),
with U = G g Gᵀ the transformed filters, V = Bᵀ d B the transformed input tiles
and P the number of tiles.  Bᵀ and Aᵀ hold only 0 and ±1, so those transforms
are additions: memory passes, while the arithmetic is in the 16 products.
Backward is the exact adjoint of those three linear steps:
    ∂M = A ∂Y Aᵀ;   ∂U = ∂M · Vᵀ → ∂g = Gᵀ ∂U G;   ∂V = Uᵀ · ∂M → ∂d = B ∂V Bᵀ, overlap-added.

The one trick that makes the passes fast in NumPy: the padded input is first split
into its four (row parity, column parity) planes, each stored flat with rows of TW + 1.
Then "element (i, j) of every tile" is one contiguous slice of a plane, shifted by
(i//2)·(TW + 1) + j//2, and every add runs over long contiguous memory.  The price is
one junk tile per row of tiles (P = N·TH·(TW + 1)); its output is dropped and its
gradient is zero.  The passes run a block of channels per thread (threads.py).
"""
from minicnn.backend.cpu.threads import parallel_blocks
from minicnn.device import get_array_module
from minicnn.shapes import winograd_tiles

__all__ = ["winograd_conv2d_backward", "winograd_conv2d_forward", "winograd_transform_input"]

# G (4×3) for the filter transform; Bᵀ, Aᵀ and their adjoints are written out as additions below.
FILTER_TRANSFORM = ((1.0, 0.0, 0.0), (0.5, 0.5, 0.5), (0.5, -0.5, 0.5), (0.0, 0.0, 1.0))
# Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]: row k of Bᵀd is d[a] ± d[b].
INPUT_TRANSFORM = ((0, 2, "subtract"), (1, 2, "add"), (2, 1, "subtract"), (1, 3, "subtract"))
# A few channels at a time keep one block's intermediate rows in the L2 cache.
BLOCK_BYTES = 1 << 18


def over_channels(channels, bytes_per_channel, work):
    """work(start, stop) over blocks of channels of about BLOCK_BYTES, the blocks shared between the threads."""
    block = max(1, BLOCK_BYTES // max(bytes_per_channel, 1))
    parallel_blocks(channels, block, work, elements_per_item=bytes_per_channel // 4)


def products(a, b, out):
    """out[i] = a[i] @ b[i] for the 16 tile positions: one BLAS call each (faster than a batched matmul here)."""
    xp = get_array_module(a)
    for i in range(a.shape[0]):
        xp.matmul(a[i], b[i], out=out[i])
    return out


def plane_shape(tiles):
    """Rows × columns of one parity plane: TH + 2 rows (the junk tile's reads stay inside) of TW + 1."""
    th, tw = tiles
    return th + 2, tw + 1


def split_planes(array, top, left, tiles):
    """(C, N, H, W) → (C, N, 2, 2, S) zero-padded: padded[2a + p, 2b + q] stored at [..., p, q, a·(TW + 1) + b].

    ``array`` starts at row ``top`` and column ``left`` of the padded image.
    """
    xp = get_array_module(array)
    c, n, h, w = array.shape
    rows, cols = plane_shape(tiles)
    planes = xp.zeros((c, n, 2, 2, rows, cols), dtype=array.dtype)
    for p, first_row, a, row_count in parity_runs(top, h):
        for q, first_col, b, col_count in parity_runs(left, w):
            planes[:, :, p, q, a : a + row_count, b : b + col_count] = array[:, :, first_row::2, first_col::2]
    return planes.reshape(c, n, 2, 2, rows * cols)


def merge_planes(planes, top, left, size, tiles, out):
    """The inverse of split_planes: write the (H, W) = ``size`` window at (top, left) into ``out`` (C', N, H, W)."""
    rows, cols = plane_shape(tiles)
    planes = planes.reshape(*planes.shape[:4], rows, cols)
    for p, first_row, a, row_count in parity_runs(top, size[0]):
        for q, first_col, b, col_count in parity_runs(left, size[1]):
            out[:, :, first_row::2, first_col::2] = planes[:, :, p, q, a : a + row_count, b : b + col_count]


def parity_runs(offset, length):
    """For parity 0 and 1: (parity, first index of the array on it, its plane index, how many)."""
    for parity in (0, 1):
        first = (parity - offset) % 2
        yield parity, first, (first + offset) // 2, len(range(first, length, 2))


def transform_filters(weight):
    """U = G g Gᵀ for every (out, in) filter: (OC, C, 3, 3) → (16, OC, C), position-major.

    Written as one product with G ⊗ G (16 × 9): entry (ξν, ij) is G[ξ, i]·G[ν, j].
    """
    xp = get_array_module(weight)
    out_channels, channels = weight.shape[:2]
    u = weight.reshape(out_channels * channels, 9) @ filter_kronecker(xp, weight.dtype).T  # (OC·C, 16)
    return xp.ascontiguousarray(u.T).reshape(16, out_channels, channels)


def filter_gradient(grad_u):
    """∂g = Gᵀ ∂U G: (16, OC, C) → (OC, C, 3, 3), the adjoint of transform_filters."""
    xp = get_array_module(grad_u)
    _, out_channels, channels = grad_u.shape
    grad = grad_u.reshape(16, -1).T @ filter_kronecker(xp, grad_u.dtype)  # (OC·C, 9)
    return grad.reshape(out_channels, channels, 3, 3)


def filter_kronecker(xp, dtype):
    g = xp.asarray(FILTER_TRANSFORM, dtype=dtype)
    return xp.kron(g, g)  # (16, 9)


def transform_input(planes, tiles):
    """V = Bᵀ d B for every 4×4 tile: planes (C, N, 2, 2, S) → (16, C, P)."""
    xp = get_array_module(planes)
    th, tw = tiles
    c, n = planes.shape[:2]
    row, length = tw + 1, th * (tw + 1)  # one plane row; the tiles' span in a plane
    v = xp.empty((4, 4, c, n, length), dtype=planes.dtype)

    def work(start, stop):
        # Row i of every tile, both column parities, one column spare for the j//2 shift: (C', N, 2, L + 1).
        rows = [planes[start:stop, :, i % 2, :, i // 2 * row : i // 2 * row + length + 1] for i in range(4)]
        row_k = xp.empty(rows[0].shape, dtype=planes.dtype)
        for k, (a, b, op) in enumerate(INPUT_TRANSFORM):
            getattr(xp, op)(rows[a], rows[b], out=row_k)  # row k of Bᵀd, all tiles at once
            cols = [row_k[:, :, j % 2, j // 2 : j // 2 + length] for j in range(4)]  # its column j
            for m, (a_col, b_col, op_col) in enumerate(INPUT_TRANSFORM):
                getattr(xp, op_col)(cols[a_col], cols[b_col], out=v[k, m, start:stop])

    over_channels(c, planes[0].nbytes, work)
    return v.reshape(16, c, n * length)


def transform_output(m, tiles, out_size):
    """Y = Aᵀ M A per tile, Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]: m (16, OC, P) → y (OC, N, OH, OW)."""
    xp = get_array_module(m)
    th, tw = tiles
    out_channels = m.shape[1]
    m = m.reshape(4, 4, out_channels, -1, th * (tw + 1))
    n = m.shape[3]
    y = xp.empty((out_channels, n, 2 * th, 2 * tw), dtype=m.dtype)

    def work(start, stop):
        part = m[:, :, start:stop]
        rows = xp.empty((2, 4, *part.shape[2:]), dtype=m.dtype)  # Aᵀ's two rows, for each column ν
        xp.add(part[0], part[1], out=rows[0])
        rows[0] += part[2]
        xp.subtract(part[1], part[2], out=rows[1])
        rows[1] -= part[3]
        pair = xp.empty(part.shape[2:], dtype=m.dtype)
        for r in (0, 1):
            xp.add(rows[r, 0], rows[r, 1], out=pair)
            pair += rows[r, 2]
            y[start:stop, :, r::2, 0::2] = drop_junk(pair, tiles)
            xp.subtract(rows[r, 1], rows[r, 2], out=pair)
            pair -= rows[r, 3]
            y[start:stop, :, r::2, 1::2] = drop_junk(pair, tiles)

    over_channels(out_channels, m[:, :, 0].nbytes, work)
    return y[:, :, : out_size[0], : out_size[1]]


def drop_junk(flat, tiles):
    """(…, TH·(TW + 1)) → (…, TH, TW): the real tiles, without each row's junk one."""
    th, tw = tiles
    return flat.reshape(*flat.shape[:-1], th, tw + 1)[..., :tw]


def winograd_conv2d_forward(x, weight, padding, out_size):
    """3×3 stride-1 conv of x (N, C, H, W) with weight (OC, C, 3, 3): (y (OC, N, OH, OW), v, u) to keep for backward.

    y is channel-major like the im2col path's output; v (16, C, P) and u (16, OC, C)
    are the transformed input and filters, which backward reuses.
    """
    xp = get_array_module(x)
    tiles = winograd_tiles(out_size)
    v = winograd_transform_input(x, padding, out_size)
    u = transform_filters(weight)
    m = products(u, v, xp.empty((16, weight.shape[0], v.shape[2]), dtype=x.dtype))  # (OC, C) · (C, P)
    return transform_output(m, tiles, out_size), v, u


def winograd_transform_input(x, padding, out_size):
    """V = Bᵀ d B for every tile of x (N, C, H, W): (16, C, P), what forward keeps (or backward rebuilds)."""
    tiles = winograd_tiles(out_size)
    # The planes hold 2·TH + 4 ≥ H + 2·ph + 2 rows: the padded input, an odd size's extra zero row, junk reads.
    return transform_input(split_planes(x.transpose(1, 0, 2, 3), *padding, tiles), tiles)


def output_gradient_transform(gy, tiles):
    """∂M = A ∂Y Aᵀ per tile, A = [[1, 0], [1, 1], [1, −1], [0, −1]]: gy (N, OC, OH, OW) → (16, OC, P).

    The junk tiles get zero gradient (their planes' entries are zero padding).
    """
    xp = get_array_module(gy)
    th, tw = tiles
    n, out_channels = gy.shape[:2]
    length = th * (tw + 1)
    planes = split_planes(gy.transpose(1, 0, 2, 3), 0, 0, tiles)  # (OC, N, 2, 2, S): gy[2a + p, 2b + q]
    grad_m = xp.empty((4, 4, out_channels, n, length), dtype=gy.dtype)

    def a_adjoint(first, second, out):  # A's four rows applied to a tile's two rows (or columns)
        out[0] = first
        xp.add(first, second, out=out[1])
        xp.subtract(first, second, out=out[2])
        xp.negative(second, out=out[3])

    def work(start, stop):
        part = planes[start:stop, :, :, :, :length]
        rows = xp.empty((4, *part[:, :, 0].shape), dtype=gy.dtype)  # (ξ, OC', N, column parity, L)
        a_adjoint(part[:, :, 0], part[:, :, 1], rows)
        for xi in range(4):
            a_adjoint(rows[xi, :, :, 0], rows[xi, :, :, 1], grad_m[xi, :, start:stop])

    over_channels(out_channels, planes[0].nbytes, work)
    return grad_m.reshape(16, out_channels, n * length)


def b_rows(v0, v1, v2, v3):
    """B = [[1, 0, 0, 0], [0, 1, −1, 1], [−1, 1, 1, 0], [0, 0, 0, −1]] applied to a tile's four rows.

    The last row is returned unnegated, with sign −1 beside it, to save a pass.
    """
    middle = v1 - v2
    middle += v3
    third = v1 + v2
    third -= v0
    return (v0, 1), (middle, 1), (third, 1), (v3, -1)


def input_gradient(grad_v, x_shape, padding, tiles):
    """∂x from ∂V (16, C, P): ∂d = B ∂V Bᵀ per tile, each element added to its plane position → (N, C, H, W)."""
    xp = get_array_module(grad_v)
    n, c, h, w = x_shape
    th, tw = tiles
    row, length = tw + 1, th * (tw + 1)
    grad_v = grad_v.reshape(4, 4, c, n, length)
    grad_x = xp.empty((c, n, h, w), dtype=grad_v.dtype)

    def work(start, stop):
        planes = xp.zeros((stop - start, n, 2, 2, plane_shape(tiles)[0] * row), dtype=grad_v.dtype)
        tile_rows = b_rows(*(grad_v[k, :, start:stop] for k in range(4)))  # (∂d row i, all columns ν)
        for i, (by_column, row_sign) in enumerate(tile_rows):
            for j, (values, column_sign) in enumerate(b_rows(*by_column)):
                offset = i // 2 * row + j // 2  # where element (i, j) of tile 0 sits in its plane
                target = planes[:, :, i % 2, j % 2, offset : offset + length]
                if row_sign * column_sign > 0:
                    target += values
                else:
                    target -= values
        merge_planes(planes, *padding, (h, w), tiles, grad_x[start:stop])

    over_channels(c, grad_v[:, :, 0].nbytes, work)
    return grad_x.transpose(1, 0, 2, 3)


def winograd_conv2d_backward(gy, v, u, x_shape, padding, need_x=True, need_weight=True):
    """Gradients of winograd_conv2d_forward: (∂x (N, C, H, W) or None, ∂weight (OC, C, 3, 3) or None)."""
    xp = get_array_module(gy)
    tiles = winograd_tiles(gy.shape[2:])
    grad_m = output_gradient_transform(gy, tiles)
    grad_x = grad_weight = None
    if need_weight:  # ∂U = ∂M · Vᵀ, summed over the tiles: (16, OC, C)
        grad_u = products(grad_m, v.transpose(0, 2, 1), xp.empty(u.shape, dtype=gy.dtype))
        grad_weight = filter_gradient(grad_u)
    if need_x:  # ∂V = Uᵀ · ∂M: (16, C, P)
        grad_v = products(u.transpose(0, 2, 1), grad_m, xp.empty(v.shape, dtype=gy.dtype))
        grad_x = input_gradient(grad_v, x_shape, padding, tiles)
    return grad_x, grad_weight
