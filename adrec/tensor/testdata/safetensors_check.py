"""Python's safetensors as the reference for adrec/text/tensor_io_test.cc.

  check             exit 0 if safetensors.torch imports (the test skips otherwise)
  read FILE         load FILE with safetensors and print it, one line per item:
                      meta <hex key> <hex value>
                      tensor <hex name> <torch dtype> <shape,comma,separated> <values,comma,separated>
                    (strings hex-encoded UTF-8, floats as repr(), ints exactly, bools 0/1)
  write FILE        write the reference tensors (ramp() of each dtype, plus special values)
"""
import math
import sys

import torch
from safetensors import safe_open
from safetensors.torch import save_file

# Python's name -> (dtype, shape); the C++ test builds the same tensors with the same ramp().
RAMPS = [
    ("f64", torch.float64, [2, 3]),
    ("f32", torch.float32, [3, 4]),
    ("f16", torch.float16, [5]),
    ("bf16", torch.bfloat16, [2, 2]),
    ("i64", torch.int64, [4]),
    ("i32", torch.int32, [2, 3]),
    ("i16", torch.int16, [3]),
    ("i8", torch.int8, [7]),
    ("u8", torch.uint8, [6]),
    ("mask", torch.bool, [5]),
    ("scalar", torch.float32, []),
    ("empty", torch.float32, [0, 3]),
    ("empty_i64", torch.int64, [0]),
]


def ramp(dtype, shape):
    n = math.prod(shape)
    base = torch.arange(n, dtype=torch.int64)
    if dtype.is_floating_point:
        t = base.double() * 0.25 - 1.5
    elif dtype == torch.bool:
        t = base % 3 == 0
    elif dtype == torch.uint8:
        t = base * 3 + 5
    else:
        t = base * 3 - 5
    return t.to(dtype).reshape(shape)


def write(path):
    tensors = {name: ramp(dtype, shape) for name, dtype, shape in RAMPS}
    tensors["f16_special"] = torch.tensor(
        [0.1, -0.0, 65504.0, 6e-8, float("inf"), float("nan"), 1e5], dtype=torch.float32).to(torch.float16)
    tensors["bf16_special"] = torch.tensor(
        [0.1, 3.14159, -1e38, 1e-40, float("-inf"), float("nan")], dtype=torch.float32).to(torch.bfloat16)
    tensors["i64_extreme"] = torch.tensor([2**63 - 1, -(2**63), 0, 12345678901234], dtype=torch.int64)
    # One metadata entry: with more, Python's key order is a hash order and the bytes may differ.
    save_file(tensors, path, metadata={"producer": "python \u2713"})


def fmt(x):
    if isinstance(x, bool):
        return str(int(x))
    return repr(x)


def read(path):
    with safe_open(path, framework="pt") as f:
        for k, v in sorted((f.metadata() or {}).items()):
            print("meta", k.encode().hex(), v.encode().hex())
        for name in f.keys():
            t = f.get_tensor(name)
            flat = t.flatten()
            if t.dtype.is_floating_point:
                flat = flat.double()
            values = ",".join(fmt(x) for x in flat.tolist())
            shape = ",".join(str(d) for d in t.shape)
            print("tensor", name.encode().hex(), str(t.dtype), shape or "-", values or "-")


def main():
    mode = sys.argv[1]
    if mode == "check":
        return
    if mode == "read":
        read(sys.argv[2])
    elif mode == "write":
        write(sys.argv[2])
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
