"""Training jobs (the first project's module path, kept for compatibility)."""
from .args import sagemaker_training_args
from .main import sagemaker_training_main

__all__ = ["sagemaker_training_args", "sagemaker_training_main"]
