"""Processing jobs (the first project's module path, kept for compatibility)."""
from .args import sagemaker_processing_args
from .main import sagemaker_processing_main

__all__ = ["sagemaker_processing_args", "sagemaker_processing_main"]
