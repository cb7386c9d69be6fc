"""Triton kernels for the `triton` backend, one file per family of ops.

Each file reads top-down, as llm.c's dev/cuda files do: what each kernel
(and each version of it) does and why, the @triton.jit kernels, then thin
launchers that check shapes, allocate outputs and pick the grid. Launchers
take and return backend arrays (CuPy on a GPU; NumPy under
TRITON_INTERPRET=1), and hand them to Triton through `common.ptr`.
"""
