"""Exports of a staged job for other schedulers.

* :mod:`~aws_sagemaker_remote.export.ack`: the ``ProcessingJob`` / ``TrainingJob``
  custom resource of the ACK SageMaker controller, equivalent to the rendered request.
* :mod:`~aws_sagemaker_remote.export.kfp`: a Kubeflow Pipelines v2 component whose
  container re-runs the recorded job with the step's inputs as overrides.

Both are pure: they turn values into documents and never call AWS.
"""
