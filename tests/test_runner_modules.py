"""``python -m cProfile script.py`` and ``python -m pdb script.py`` launch the user's script, not the runner."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

RUNNER_SCRIPT = '''from aws_sagemaker_remote import sagemaker_processing_main


def main(args):
    print("ran", args.output)


if __name__ == "__main__":
    sagemaker_processing_main(main, outputs={"output": "output"})
'''


@pytest.mark.parametrize("runner", ["cProfile", "pdb"])
def test_a_runner_module_launches_the_users_script(runner: str, run_python: Any, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    script = project / "mine.py"
    script.write_text(RUNNER_SCRIPT)
    run = run_python("-m", runner, script, "--sagemaker-run=local", "--sagemaker-dry-run", cwd=project,
                     input="continue\nquit\n" if runner == "pdb" else None)
    assert '"ContainerArguments"' in run.stdout, run.stdout + run.stderr
    listed = [line for line in run.stderr.splitlines()
              if line.startswith("bundle: ") and not line.startswith("bundle: manifest.json ")]
    # the job's code is the user's script alone: neither the runner module nor the standard library
    assert listed == [f"bundle: script/mine.py ({len(RUNNER_SCRIPT)} B)"], run.stderr
