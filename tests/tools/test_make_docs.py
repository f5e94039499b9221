"""readme_results.py: the README's measured tables are generated from the runs' JSON, never typed."""

import json
import os
import shutil

import readme_results
from tools import sgd_study
from tests.support import ROOT



def test_readme_tables_match_the_committed_runs(tmp_path, monkeypatch):
    """Regenerating the README from results/ changes nothing: its numbers are the runs' numbers."""
    readme = tmp_path / "README.md"
    shutil.copy(os.path.join(ROOT, "README.md"), readme)
    monkeypatch.chdir(ROOT)  # the tables name their sources relative to the repository
    readme_results.main(["--readme", str(readme)])
    assert readme.read_text() == open(os.path.join(ROOT, "README.md")).read()


def test_bench_table_shows_a_spread_only_over_repeats(tmp_path):
    common = {"device": "CPU: test", "backend": "tensorflow", "versions": {"keras": "3"}, "epochs": 2,
              "batch_size": 128, "smoke": False}
    row = {"model": "cnn", "path": "plain", "steady_s_per_epoch": 40.0, "compile_s": 3.0,
           "speedup_vs_plain": 1.0}
    (tmp_path / "one.json").write_text(json.dumps({**common, "repeats": 1, "results": [
        {**row, "repeats": 1, "test_accuracy_mean": 98.89, "test_accuracy_std": None}]}))
    (tmp_path / "three.json").write_text(json.dumps({**common, "repeats": 3, "results": [
        {**row, "repeats": 3, "test_accuracy_mean": 99.0, "test_accuracy_std": 0.125}]}))
    text = readme_results.bench_tables(str(tmp_path))
    assert "| cnn | plain | 40.000 | 3.0 | 98.89 | 1.00x |" in text
    assert "| cnn | plain | 40.000 | 3.0 | 99.00 ± 0.12 | 1.00x |" in text


def test_sgd_study_says_what_is_not_run(tmp_path):
    """With no records the study's brief shows every tested row as not run, and claims no common budget."""
    text = sgd_study.docs_block({}, str(tmp_path))
    rows = [line for line in text.splitlines() if line.startswith("| Table ")]
    assert len(rows) == 6 and all(line.count("not run") == 4 for line in rows)
    assert "at once" not in text
