"""The job's environment is what the command line said, in the job as in a plain run.

Precedence inside the job: a variable the configuration command exports >
``--sagemaker-env`` on the command line > the ``env=`` keyword default. The
job's own command line carries ``--sagemaker-run=job``, so the script inside
the job does not apply the keyword defaults again over what it was given.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

ENV_SCRIPT = '''
import os
from aws_sagemaker_remote import sagemaker_processing_main


def main(args):
    print("FOO=%s BAR=%s" % (os.environ.get("FOO", "<unset>"), os.environ.get("BAR", "<unset>")))
    print("RUN=%s" % args.sagemaker_run)


if __name__ == "__main__":
    sagemaker_processing_main(main=main, env={"FOO": "from-keyword"}{extra})
'''


def _script(tmp_path: Path, configuration_command: Optional[str] = None) -> Path:
    extra = f", configuration_command={configuration_command!r}" if configuration_command else ""
    script = tmp_path / "envjob.py"
    script.write_text(ENV_SCRIPT.replace("{extra}", extra))
    return script


def _job_line(stdout: str, prefix: str) -> str:
    """The job's line starting with ``prefix`` (the local backend prefixes each with ``[algo-1]``)."""
    lines = [line.split("] ", 1)[1] for line in stdout.splitlines()
             if line.startswith("[algo-1] ") and line.split("] ", 1)[1].startswith(prefix)]
    assert len(lines) == 1, stdout
    return lines[0]


def test_keyword_default_reaches_the_job(tmp_path: Path, run_script: Any) -> None:
    run = run_script(_script(tmp_path), "--sagemaker-run=local", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _job_line(run.stdout, "FOO=") == "FOO=from-keyword BAR=<unset>"
    # the job's own command line is marked: it runs main and keeps the environment it was given
    assert _job_line(run.stdout, "RUN=") == "RUN=job"


def test_command_line_env_wins_over_the_keyword_in_the_job(tmp_path: Path, run_script: Any) -> None:
    run = run_script(_script(tmp_path), "--sagemaker-run=local", "--sagemaker-env", "FOO=from-cli",
                     "--sagemaker-env=BAR=also-cli", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _job_line(run.stdout, "FOO=") == "FOO=from-cli BAR=also-cli"


def test_configuration_command_exports_are_kept(tmp_path: Path, run_script: Any) -> None:
    script = _script(tmp_path, configuration_command="export BAR=from-config; export FOO=from-config")
    run = run_script(script, "--sagemaker-run=local", "--sagemaker-env", "FOO=from-cli", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert _job_line(run.stdout, "FOO=") == "FOO=from-config BAR=from-config"


def test_plain_run_sees_the_env_and_restores_the_callers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """In-process: ``main`` sees the variables; the caller's ``os.environ`` is as it was afterwards."""
    from aws_sagemaker_remote import sagemaker_processing_main

    monkeypatch.setenv("BAR", "callers")
    monkeypatch.delenv("FOO", raising=False)
    seen: Dict[str, Optional[str]] = {}

    def main(args: Any) -> None:
        seen.update(FOO=os.environ.get("FOO"), BAR=os.environ.get("BAR"))

    sagemaker_processing_main(main, script=str(tmp_path / "x.py"), env={"FOO": "from-keyword"},
                              argv=["--sagemaker-env", "BAR=from-cli"])
    assert seen == {"FOO": "from-keyword", "BAR": "from-cli"}
    assert "FOO" not in os.environ
    assert os.environ["BAR"] == "callers"


def test_plain_run_with_the_command_line_env(tmp_path: Path, run_script: Any) -> None:
    run = run_script(_script(tmp_path), "--sagemaker-env", "FOO=from-cli", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "FOO=from-cli BAR=<unset>" in run.stdout
    assert "RUN=no" in run.stdout
