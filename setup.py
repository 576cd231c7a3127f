"""Builds the C tracing core (csrc/) as the CPython extension hypervisor._tracer."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "hypervisor._tracer",
            sources=[
                "csrc/tracer_module.c",
                "csrc/tracer_calls.c",
                "csrc/tracer_answers.c",
                "csrc/answers.c",
                "csrc/bpf_filter.c",
                "csrc/config.c",
                "csrc/fastpath.c",
                "csrc/listener.c",
                "csrc/spawn.c",
                "csrc/tracee_mem.c",
            ],
            depends=["csrc/tracer.h", "csrc/tracer_object.h"],
            include_dirs=["csrc"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
            libraries=["pthread"],
        )
    ]
)
