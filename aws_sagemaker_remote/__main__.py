"""``python -m aws_sagemaker_remote``: the ``aws-sagemaker-remote`` command."""
from .cli import main

if __name__ == "__main__":
    main()
