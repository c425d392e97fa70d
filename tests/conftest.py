"""Tests run with one torch thread per process: CI runs two pytest workers on two cores, and
oversubscribed threads make small kernels (im2col, scatter) orders of magnitude slower."""

import torch

torch.set_num_threads(1)
