"""Builds the optional C hot paths; the package works without them (see ws_sync/native.py)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ws_sync._speedups", ["ws_sync/_speedups.c"], optional=True)])
