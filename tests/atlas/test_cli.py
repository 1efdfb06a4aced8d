"""`terrainlab atlas` and `terrainlab claims` through the command line entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from terrainlab.atlas.schema import validate_results
from terrainlab.cli import main

FIX = "_atlas_runner_fixtures"


def atlas(out: Path, *extra: str) -> int:
    return main(["atlas", "--out", str(out), "--package", "none", "--module", FIX, *extra])


def test_atlas_exit_codes_output_and_claims(tmp_path, fixtures, capsys):
    (tmp_path / "release").touch()
    assert atlas(tmp_path, "--only", "ch90.fixture_ok,ch91.fixture_fails", "--jobs", "2", "--quick") == 0
    out = capsys.readouterr().out
    # each experiment's id, verdict and seconds as it finishes, then the total and the report path
    assert "ch90.fixture_ok" in out and "holds" in out and "ch91.fixture_fails" in out
    assert " s" in out and "total" in out and "index.html" in out
    results = json.loads((tmp_path / "results.json").read_text())
    validate_results(results)
    assert results["quick"] is True and results["only"] == ["ch90.fixture_ok", "ch91.fixture_fails"]
    assert (tmp_path / "index.html").exists()

    # an erroring experiment makes the exit code non-zero; the others are still reported
    assert atlas(tmp_path, "--only", "ch90", "--quick") == 1
    out = capsys.readouterr().out
    assert "RuntimeError: boom from the fixture" in out and "1 error(s)" in out

    assert main(["claims", "--out", str(tmp_path), "--json"]) == 0
    claims = json.loads(capsys.readouterr().out)
    verdicts = {c["id"]: c["verdict"] for c in claims["claims"]}
    assert verdicts == {"ch90.fixture_ok": "holds", "ch90.fixture_raises": "error", "ch91.fixture_fails": "fails"}
    assert claims["totals"]["error"] == 1 and claims["quick"] is True

    assert main(["claims", "--out", str(tmp_path)]) == 0
    table = capsys.readouterr().out
    assert "ch91.fixture_fails" in table and "fails" in table and "<script>" in table  # text, not markup


def test_bad_input(tmp_path, fixtures, capsys):
    assert main(["claims", "--out", str(tmp_path / "nothing")]) == 2
    assert "no results" in capsys.readouterr().err
    (tmp_path / "results.json").write_text('{"schema": 1}')
    assert main(["claims", "--out", str(tmp_path)]) == 2
    assert "results.generated: missing" in capsys.readouterr().err
    assert atlas(tmp_path, "--only", "ch77") == 2
    assert "matches no experiment" in capsys.readouterr().out
    for bad in (["--jobs", "0"], ["--seed", "-2"], ["--timeout", "0"], ["--jobs", "x"]):
        with pytest.raises(SystemExit) as exc:
            atlas(tmp_path, *bad)
        assert exc.value.code == 2
        assert bad[0] in capsys.readouterr().err
