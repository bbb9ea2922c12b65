"""Launch a code folder as a Processing job with the SageMaker Python SDK v2 ``FrameworkProcessor``.

Usage: ``python bench/sdk_launch.py CODE_DIR ENTRY_POINT INPUT_DIR ROLE IMAGE BUCKET``
(``INPUT_DIR`` may be ``-`` for a job without input) with ``AWS_ENDPOINT_URL``
pointing at the moto server. It is what a user of the SDK writes for the job the
package launches with ``--sagemaker-run=yes --sagemaker-wait=no``: a
``FrameworkProcessor`` that packs ``CODE_DIR`` into ``sourcedir.tar.gz``,
uploads it with the SDK's ``runproc.sh`` and the local input folder, then
creates the job without waiting for it.

The SDK uploads all of it under a prefix named after the new job, so every
launch uploads everything again. The bucket is named explicitly: without it
the SDK asks STS for the account. Telemetry is switched off through the
SDK's own config file (``SAGEMAKER_USER_CONFIG_OVERRIDE``, written by the
benchmark). The estimator class only tells the SDK how to pack the code; the
image is given, so no image lookup happens.
"""
from __future__ import annotations

import sys
from typing import List, Optional

#: Any framework estimator works; its version is only used when no image is given.
FRAMEWORK_VERSION = "1.2-1"


def main(argv: Optional[List[str]] = None) -> int:
    code_dir, entry_point, input_dir, role, image, bucket = (sys.argv[1:] if argv is None else argv)[:6]

    # Installed only in the SDK's own venv.
    from sagemaker.processing import FrameworkProcessor, ProcessingInput  # type: ignore[import-not-found,import-untyped]
    from sagemaker.session import Session  # type: ignore[import-not-found,import-untyped]
    from sagemaker.sklearn.estimator import SKLearn  # type: ignore[import-not-found,import-untyped]

    processor = FrameworkProcessor(
        estimator_cls=SKLearn,
        framework_version=FRAMEWORK_VERSION,
        role=role,
        image_uri=image,
        instance_type="ml.m5.large",
        instance_count=1,
        base_job_name="bench-sdk",
        sagemaker_session=Session(default_bucket=bucket),
    )
    inputs = []
    arguments: List[str] = []
    if input_dir != "-":
        inputs.append(ProcessingInput(source=input_dir, destination="/opt/ml/processing/input/data",
                                      input_name="data"))
        arguments = ["--data", "/opt/ml/processing/input/data"]
    processor.run(code=entry_point, source_dir=code_dir, inputs=inputs or None, arguments=arguments or None,
                  wait=False, logs=False)
    print(processor.latest_job.job_name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
