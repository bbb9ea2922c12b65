"""``aws_sagemaker_remote.training.main.sagemaker_training_main`` (compatibility path)."""
from ..api import sagemaker_training_main

__all__ = ["sagemaker_training_main"]
