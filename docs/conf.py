"""Sphinx configuration of the aws_sagemaker_remote documentation.

The flag reference is generated from the real parsers (``sphinxarg.ext``), and
the API reference from the package's docstrings (``autodoc``), so both stay in
step with the code. Importing the package loads no AWS library, so the docs
build without boto3 configured or any network access.
"""
from __future__ import annotations

import os
import sys

# Build from the checkout even when the package is not installed.
sys.path.insert(0, os.path.abspath(".."))

from aws_sagemaker_remote import __version__  # noqa: E402

project = "aws_sagemaker_remote"
author = "aws_sagemaker_remote contributors"
copyright = "aws_sagemaker_remote contributors"
version = __version__
release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinxarg.ext",
]

exclude_patterns = ["_build"]
root_doc = "index"
html_theme = "alabaster"

autodoc_member_order = "bysource"
autodoc_typehints = "description"
# ``from __future__ import annotations`` leaves type hints as strings; these
# aliases keep them readable instead of expanding every Mapping[...] in full.
autodoc_type_aliases = {"MainFunction": "aws_sagemaker_remote.api.MainFunction"}
napoleon_google_docstring = False
napoleon_numpy_docstring = True
