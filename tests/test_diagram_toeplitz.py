"""Notebook 02's opening picture: the conv1d kernel unrolled into its block-Toeplitz matrix, next to a dense
matrix of the same size. The Toeplitz panel must draw the matrix of the convolution itself: checked against
``torch.nn.functional.conv1d`` (applied to the unit vectors), not against the library's index matrix."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from matplotlib.colors import to_rgba  # noqa: E402

from scalegmn_lite.course.diagrams import draw_conv_toeplitz_gauge, text_overlaps  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def conv_matrix(kernel: torch.Tensor, n: int) -> np.ndarray:
    """The matrix of ``x -> conv1d(x, kernel)`` on flattened signals, column by column from unit vectors."""
    c_in = kernel.shape[1]
    eye = torch.eye(c_in * n, dtype=kernel.dtype).reshape(c_in * n, c_in, n)
    return F.conv1d(eye, kernel).reshape(c_in * n, -1).T.numpy()


def cells(fig, prefix: str) -> dict[tuple[int, ...], tuple[tuple[float, ...], str]]:
    """``{position: (face colour, label)}`` of the cells drawn with gid ``prefix:i,j,...``."""
    ax = fig.axes[0]
    labels = {t.get_gid(): t.get_text() for t in ax.texts if (t.get_gid() or "").startswith(prefix + ":")}
    out = {}
    for p in ax.patches:
        gid = p.get_gid() or ""
        if gid.startswith(prefix + ":"):
            out[tuple(int(v) for v in gid[len(prefix) + 1:].split(","))] = (p.get_facecolor(), labels.get(gid, ""))
    return out


@pytest.mark.parametrize("shape, n", [((2, 1, 3), 6), ((2, 2, 2), 3), ((3, 1, 2), 3)])
def test_toeplitz_panel_draws_the_convolution(shape, n):
    kernel = torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape) + n), dtype=torch.float64)
    fig = draw_conv_toeplitz_gauge(kernel=kernel, n=n)
    assert isinstance(fig, plt.Figure)
    expected = conv_matrix(kernel, n)
    np.testing.assert_allclose(fig.toeplitz, expected, rtol=0, atol=1e-12)

    drawn = cells(fig, "toeplitz")
    assert set(drawn) == set(np.ndindex(*expected.shape))  # one cell per matrix entry
    kernel_color = {round(float(v), 12): col for (o, c, j), (col, _) in cells(fig, "kernel").items()
                    for v in [kernel[o, c, j]]}
    assert len(cells(fig, "kernel")) == kernel.numel()
    for (r, s), (col, label) in drawn.items():
        v = expected[r, s]
        if v == 0:  # a structural zero (a random kernel has no zero weight): white, no label
            assert col == to_rgba("white") and label == ""
        else:  # the colour of the kernel weight it holds, labelled with its value
            assert col == kernel_color[round(float(v), 12)]
            assert abs(float(label) - v) <= 0.051
    # the dense matrix of the same shape, one scale label per row; one bracket label per output channel
    assert set(cells(fig, "dense")) == set(drawn)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert sum("s_{" in t for t in texts) == expected.shape[0]
    assert sum("d_{" in t for t in texts) == shape[0]
    assert text_overlaps(fig) == []


def test_symbolic_default_is_the_2x1x3_kernel_on_its_diagonals():
    fig = draw_conv_toeplitz_gauge()
    assert fig.toeplitz.shape == (8, 6) and fig.toeplitz_index.shape == (8, 6)
    drawn = cells(fig, "toeplitz")
    # output channel o, position p reads inputs p .. p + 2: entry (4 o + p, p + j) is k_{o0j}, all else zero
    expected = {(4 * o + p, p + j): f"$k_{{{o}0{j}}}$" for o in range(2) for p in range(4) for j in range(3)}
    assert {rs: label for rs, (_, label) in drawn.items() if label} == expected
    kernel = cells(fig, "kernel")
    for (r, s), (col, label) in drawn.items():
        if label:  # the colour of its kernel cell
            o, j = r // 4, s - r % 4
            assert kernel[(o, 0, j)] == (col, label)
        else:
            assert col == to_rgba("white")
    assert len({col for col, _ in kernel.values()}) == 6  # six weights, six colours
    assert text_overlaps(fig) == []


def test_accepts_an_axes_and_rejects_what_it_cannot_draw():
    fig, ax = plt.subplots(figsize=(10, 4.4))
    assert draw_conv_toeplitz_gauge(ax=ax) is fig
    with pytest.raises(ValueError, match="readably"):
        draw_conv_toeplitz_gauge(shape=(3, 3, 3))
    with pytest.raises(ValueError, match="readably"):
        draw_conv_toeplitz_gauge(n=12)
    with pytest.raises(ValueError, match=r"\[c_out, c_in, k\]"):
        draw_conv_toeplitz_gauge(kernel=np.ones((2, 3)))
