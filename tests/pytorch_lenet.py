#!/usr/bin/python3
"""Write PyTorch reference nets for the libcnn cross-check (tests/test_pytorch.c).

Usage: /usr/bin/python3 tests/pytorch_lenet.py OUTDIR

For each net, OUTDIR/<net>/ receives:
  manifest.txt   the architecture, one layer a line (format below)
  lNN_w.bin      weights in PyTorch layout (conv OIHW, linear [out][in])
  lNN_b.bin      biases
  input.bin      the input batch, NHWC
  output.bin     the net's output, NHWC ([batch][classes] after a linear layer)
OUTDIR/nets.txt lists the net directories, one a line.
Every .bin file is raw little-endian float32.

Manifest lines are a keyword followed by key=value fields:
  input h= w= c=                       the net's input shape (one image)
  batch n= file=                       the input batch
  output h= w= c= file=                the expected output (one image's shape)
  conv filters= kh= kw= sh= sw= ph= pw= bias=0|1 weights= [biasfile=]
  pool kind=max|avg wh= ww= sh= sw= ph= pw= count_pad=0|1
  act kind=relu|leaky_relu|sigmoid|tanh slope=
  dense units= bias=0|1 weights= [biasfile=]
  softmax
Flatten writes no line: a libcnn dense layer flattens its input itself.
"""
import os
import sys

import torch
from torch import nn

BATCH = 4


def lenet(hidden_act, head):
    """LeNet-5 style net for 1x28x28 images."""
    layers = [
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), hidden_act, nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.LeakyReLU(0.01),
        nn.Linear(84, 10),
    ]
    return nn.Sequential(*(layers + head)), (1, 28, 28)


def strided():
    """Stride 2, per-axis padding and strides, non-square kernels, padded pooling
    (max, average with and without the padded cells), a 1x1 conv and no-bias layers
    on a 3x32x30 input."""
    layers = [
        nn.Conv2d(3, 8, (5, 3), stride=2, padding=(2, 1)),                 # 16x15x8
        nn.Tanh(),  # negative values, so a zero-padded max pool would differ
        nn.MaxPool2d(2, stride=2, padding=1),                               # 9x8x8
        nn.Conv2d(8, 12, (3, 5), stride=(1, 2), padding=(1, 2)),           # 9x4x12
        nn.ReLU(),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=True),      # 9x4x12
        nn.Conv2d(12, 16, (2, 3), stride=(2, 1), padding=(0, 1), bias=False),  # 4x4x16
        nn.LeakyReLU(0.1),
        nn.AvgPool2d((2, 3), stride=(2, 1), padding=1, count_include_pad=False),  # 3x4x16
        nn.Conv2d(16, 10, 1),                                               # 3x4x10
        nn.Flatten(),
        nn.Linear(120, 32), nn.Sigmoid(),
        nn.Linear(32, 10, bias=False),
    ]
    return nn.Sequential(*layers), (3, 32, 30)


# name -> (seed, builder); each net gets its own seed so nets do not depend on order.
NETS = {
    "lenet_tanh": (1234, lambda: lenet(nn.Tanh(), [])),
    "lenet_relu_softmax": (2345, lambda: lenet(nn.ReLU(), [nn.Softmax(dim=1)])),
    "lenet_sigmoid_out": (3456, lambda: lenet(nn.Tanh(), [nn.Sigmoid()])),
    "strided_rgb": (4567, strided),
}


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def write_f32(tensor, path):
    tensor.detach().to(torch.float32).contiguous().numpy().astype("<f4").tofile(path)


def nhwc(tensor):
    """NCHW -> NHWC; a [batch][features] tensor is already NHWC with H = W = 1."""
    return tensor.permute(0, 2, 3, 1) if tensor.dim() == 4 else tensor


def describe(index, module, outdir):
    """Manifest line of one module (None for Flatten), writing its parameters."""
    def params(weight, bias):
        wname = "l%02d_w.bin" % index
        write_f32(weight, os.path.join(outdir, wname))
        text = "bias=%d weights=%s" % (bias is not None, wname)
        if bias is not None:
            bname = "l%02d_b.bin" % index
            write_f32(bias, os.path.join(outdir, bname))
            text += " biasfile=" + bname
        return text

    if isinstance(module, nn.Conv2d):
        assert module.groups == 1 and pair(module.dilation) == (1, 1)
        assert module.padding_mode == "zeros"
        kh, kw = pair(module.kernel_size)
        sh, sw = pair(module.stride)
        ph, pw = pair(module.padding)
        return "conv filters=%d kh=%d kw=%d sh=%d sw=%d ph=%d pw=%d %s" % (
            module.out_channels, kh, kw, sh, sw, ph, pw, params(module.weight, module.bias))
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        kh, kw = pair(module.kernel_size)
        sh, sw = pair(module.stride)
        ph, pw = pair(module.padding)
        assert not module.ceil_mode
        if isinstance(module, nn.MaxPool2d):
            assert pair(module.dilation) == (1, 1)
            kind, count_pad = "max", 1
        else:
            assert module.divisor_override is None
            kind, count_pad = "avg", int(module.count_include_pad)
        return "pool kind=%s wh=%d ww=%d sh=%d sw=%d ph=%d pw=%d count_pad=%d" % (
            kind, kh, kw, sh, sw, ph, pw, count_pad)
    if isinstance(module, nn.Linear):
        return "dense units=%d %s" % (module.out_features, params(module.weight, module.bias))
    if isinstance(module, nn.ReLU):
        return "act kind=relu slope=0"
    if isinstance(module, nn.LeakyReLU):
        return "act kind=leaky_relu slope=%r" % module.negative_slope
    if isinstance(module, nn.Sigmoid):
        return "act kind=sigmoid slope=0"
    if isinstance(module, nn.Tanh):
        return "act kind=tanh slope=0"
    if isinstance(module, nn.Softmax):
        assert module.dim == 1
        return "softmax"
    if isinstance(module, nn.Flatten):
        return None
    raise TypeError("no manifest line for %s" % type(module).__name__)


def write_net(name, seed, build, outdir):
    torch.manual_seed(seed)
    net, (c, h, w) = build()
    net = net.to(torch.float32).eval()
    x = torch.randn(BATCH, c, h, w, dtype=torch.float32)
    with torch.no_grad():
        y = nhwc(net(x))
    os.makedirs(outdir, exist_ok=True)
    lines = ["# %s: written by tests/pytorch_lenet.py (torch %s, seed %d)"
             % (name, torch.__version__, seed),
             "input h=%d w=%d c=%d" % (h, w, c),
             "batch n=%d file=input.bin" % BATCH]
    out_shape = tuple(y.shape[1:]) if y.dim() == 4 else (1, 1, y.shape[1])
    lines.append("output h=%d w=%d c=%d file=output.bin" % out_shape)
    for index, module in enumerate(net):
        line = describe(index, module, outdir)
        if line is not None:
            lines.append(line)
    write_f32(nhwc(x), os.path.join(outdir, "input.bin"))
    write_f32(y, os.path.join(outdir, "output.bin"))
    with open(os.path.join(outdir, "manifest.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d layers, input %dx%dx%d (HWC), output %s, max|y| = %.4g"
          % (name, len(net), h, w, c, "x".join(map(str, out_shape)), y.abs().max().item()))


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: %s OUTDIR\n" % argv[0])
        return 2
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    for name, (seed, build) in NETS.items():
        write_net(name, seed, build, os.path.join(outdir, name))
    with open(os.path.join(outdir, "nets.txt"), "w") as f:
        f.write("".join(name + "\n" for name in NETS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
