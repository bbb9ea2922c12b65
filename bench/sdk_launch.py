"""Launch demo/wordcount.py as a Processing job with the SageMaker Python SDK v3.

Usage: ``python bench/sdk_launch.py SCRIPT INPUT_DIR ROLE IMAGE BUCKET`` with
``AWS_ENDPOINT_URL`` pointing at the moto server. It is what a user of the SDK
writes for the same job the package launches with ``--sagemaker-run=yes
--sagemaker-wait=no``: a ``ScriptProcessor`` that uploads the script and the
local input folder, then creates the job without waiting for it.

The SDK uploads both under a prefix named after the new job, so every launch
uploads everything again. The bucket is named explicitly: without it the
SDK asks STS for the account through an endpoint it builds itself, which
ignores ``AWS_ENDPOINT_URL``. Telemetry is switched off through the SDK's own
config file (``SAGEMAKER_USER_CONFIG_OVERRIDE``, written by the benchmark).
"""
from __future__ import annotations

import sys
from typing import List, Optional


def main(argv: Optional[List[str]] = None) -> int:
    script, input_dir, role, image, bucket = (sys.argv[1:] if argv is None else argv)[:5]

    from sagemaker.core.helper.session_helper import Session
    from sagemaker.core.processing import ProcessingInput, ProcessingS3Input, ScriptProcessor

    processor = ScriptProcessor(
        role=role,
        image_uri=image,
        command=["python3"],
        instance_type="ml.m5.large",
        instance_count=1,
        base_job_name="wordcount-sdk",
        sagemaker_session=Session(default_bucket=bucket),
    )
    processor.run(
        code=script,
        inputs=[ProcessingInput(
            input_name="input",
            s3_input=ProcessingS3Input(
                s3_uri=input_dir,
                local_path="/opt/ml/processing/input/input",
                s3_data_type="S3Prefix",
                s3_input_mode="File",
            ),
        )],
        arguments=["--input", "/opt/ml/processing/input/input"],
        wait=False,
        logs=False,
    )
    print(processor.latest_job.processing_job_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
