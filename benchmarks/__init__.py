"""Benchmarks of our kernels against torch: `python -m benchmarks --help`.

    cases.py    every contract op at the DCGAN, MNIST-model and large shapes
    cost.py     FLOP and byte formulas, the roofline
    timing.py   CPU and CUDA-event timers, measured peaks
    ops.py      per-op runs: check against torch, then time
    step.py     the whole DCGAN training step per provider
    report.py   JSON, Markdown and PNG output
    inspect_kernel.py   for students: one kernel's launch configuration,
                registers and shared memory, and its place on the roofline
"""
