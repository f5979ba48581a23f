"""elad_core/plots.py: the run's curve picture (issue #16 item 2d)."""

import base64

from elad_core.plots import curve_png, png_data_uri


def test_curve_png_draws_the_evaluated_rounds(tmp_path):
    rows = [{"round": 0, "cumulative_teacher_tokens": 1200, "accuracy": 0.1},
            {"round": 1, "cumulative_teacher_tokens": 2500, "accuracy": None},  # stopped
            {"round": 2, "cumulative_teacher_tokens": 3900, "accuracy": 0.25}]
    path = curve_png(rows, "accuracy", tmp_path / "c.png", "t")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000
    assert base64.b64decode(png_data_uri(path).split(",", 1)[1]) == data


def test_curve_png_without_any_evaluated_round_still_writes_a_picture(tmp_path):
    path = curve_png([{"round": 0, "cumulative_teacher_tokens": 10, "f1": None}], "f1",
                     tmp_path / "c.png", "t")
    assert path.read_bytes()[:4] == b"\x89PNG"
