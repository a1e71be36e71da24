"""Builds the optional C hot paths; the package works without them (see ws_sync/native.py)."""

import sys

from setuptools import Extension, setup

# Linked stripped on Linux: the wheel ships no debug symbols (about a third of its size).
STRIP = ["-s"] if sys.platform.startswith("linux") else []

setup(
    ext_modules=[
        Extension(
            "ws_sync._speedups",
            ["ws_sync/_speedups.c"],
            optional=True,
            extra_link_args=STRIP,
        )
    ]
)
