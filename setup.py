"""Builds the C tracing core (csrc/) as the CPython extension hypervisor._tracer."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hypervisor._tracer",
            sources=["csrc/tracer_module.c"],
            include_dirs=["csrc"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
        )
    ]
)
