"""The NumPy backend's kernels that are more than one ufunc, by family.

    masks.py      exact branch-free selections (the ReLU / LeakyReLU backwards)
    batchnorm.py  batch norm in few passes, per-channel sums by einsum
    conv.py       convolution as im2col + one GEMM, and its two gradients
    threads.py    a small thread pool for the convolution's big copies and adds

kernels/numpy_backend.py (class NumpyBackend) calls these; everything here
takes and returns plain ndarrays and follows kernels/contract.py.
"""
