"""Backends run a rendered request: SageMaker (boto3) or this machine (no Docker).

Both implement :class:`~aws_sagemaker_remote.backends.base.Backend`, the one
narrow seam between building a job and running it.
"""
