"""``aws_sagemaker_remote.processing.main.sagemaker_processing_main`` (compatibility path)."""
from ..api import sagemaker_processing_main

__all__ = ["sagemaker_processing_main"]
