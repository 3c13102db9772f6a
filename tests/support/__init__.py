"""Helpers shared by the test modules: plain functions and data builders, no tests.

Test modules import from here (and from `multimodal`), never from each other; fixtures live in
tests/conftest.py. tests/test_layers.py checks that no module imports a test module.
"""
