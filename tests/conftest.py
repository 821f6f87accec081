"""Test session setup: double precision on (the library itself never sets it), shared fixtures."""

import jax

# Tests need complex128; enable x64 once, before any array is created.
jax.config.update("jax_enable_x64", True)

import zlib  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng(request):
    """A numpy Generator seeded from the test's module and name: reproducible, different per test."""
    seed = zlib.crc32(f"{request.node.module.__name__}::{request.node.name}".encode())
    return np.random.default_rng(seed)


@pytest.fixture
def key():
    """A fixed JAX PRNG key."""
    return jax.random.key(0)
