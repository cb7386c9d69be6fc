"""The `cupy` backend's kernels: CUDA C sources (*.cu) with a thin Python
launcher beside each (*.py of the same name).

    runtime.py      loads a .cu file (NVRTC through cupy.RawModule on a GPU, or
                    the host compiler with emulate.h under NN_CUDA_EMULATE=1)
                    and launches its kernels
    common.cuh      what every kernel file includes: math on float/double,
                    warp sums, the TF32 tensor-core tile
    emulate.h       the CUDA execution model on a CPU (fibers for threads)
    conv            implicit-GEMM convolution, tiled FP32/FP64 and TF32 tensor-core versions
    batchnorm       split Welford statistics with warp shuffles, fused activation
    elementwise     fill, strided copy/cast/broadcasting arithmetic, activations, Philox
    reduce          deterministic sums and means
    loss            BCE and BCE-with-logits
    optim           multi-tensor Adam and SGD
"""
