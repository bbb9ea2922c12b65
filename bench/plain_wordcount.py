"""demo/wordcount.py without the framework: the baseline of the local-run overhead.

The counting and the two output files are the demo's, line for line; only the
entry point differs (plain argparse instead of ``sagemaker_processing_main``).
The logic is copied rather than imported because importing the demo would
import ``aws_sagemaker_remote``, which is exactly the cost being measured. The
benchmark checks that both write the same ``counts.json``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
from collections import Counter
from typing import Dict, Iterator, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INPUT = os.path.join(HERE, os.pardir, "demo", "data", "text")

WORD_RE = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


def text_files(folder: str) -> Iterator[str]:
    """Every ``.txt`` file under ``folder``, in a stable order."""
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".txt"):
                yield os.path.join(root, name)


def count_words(folder: str, lowercase: bool) -> Tuple["Counter[str]", int]:
    """Word counts of all text files under ``folder`` and the number of files read."""
    counts: Counter[str] = Counter()
    files = 0
    for path in text_files(folder):
        files += 1
        with open(path, encoding="utf-8") as f:
            for line in f:
                counts.update(WORD_RE.findall(line.lower() if lowercase else line))
    return counts, files


def main(argv: Optional[List[str]] = None) -> Dict[str, int]:
    parser = argparse.ArgumentParser(description="Count the words of every .txt file in a folder.")
    parser.add_argument("--input", default=DEFAULT_INPUT)
    parser.add_argument("--output", required=True)
    parser.add_argument("--min-count", type=int, default=1)
    parser.add_argument("--lowercase", action="store_true")
    args = parser.parse_args(argv)

    counts, files = count_words(args.input, args.lowercase)
    kept = {word: n for word, n in counts.items() if n >= args.min_count}
    os.makedirs(args.output, exist_ok=True)
    with open(os.path.join(args.output, "counts.json"), "w", encoding="utf-8") as f:
        json.dump(kept, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(args.output, "counts.csv"), "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["word", "count"])
        for word, n in sorted(kept.items(), key=lambda item: (-item[1], item[0])):
            writer.writerow([word, n])
    print(f"wordcount: {files} files, {sum(counts.values())} words, {len(kept)} distinct "
          f"with count >= {args.min_count}, written to {args.output}")
    return kept


if __name__ == "__main__":
    main()
