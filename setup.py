"""Packaging beyond what pyproject.toml can say: the built-in rules.

The repository keeps the built-in rule files in the top-level ``rules/`` (where operators
and reviewers look for them); the wheel carries them as the data package
``proxy.consent.builtin`` (``proxy/consent/builtin/*.toml``), so an installed proxy
has them in any directory. ``proxy.consent.layers.builtin_directory`` finds them there,
or in ``rules/`` when the package runs from a checkout (an editable install).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["proxy", "proxy.*"]), "proxy.consent.builtin"],
    package_dir={"proxy.consent.builtin": "rules"},
)
