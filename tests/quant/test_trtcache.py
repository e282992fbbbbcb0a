"""TensorRT calibration cache: the text format legacy calibrators read."""

from __future__ import annotations

import pytest

from edgeseg.core import trtcache


@pytest.mark.parametrize("version, code", [("8.6.1", 8601), ("8.5", 8500), ("10.3.0", 100300),
                                           ("10.13.2", 101302), ("7.1.3.4", 7103)])
def test_version_codes(version, code):
    assert trtcache.version_code(version) == code


def test_hex_is_the_big_endian_float_bits():
    assert trtcache.float_hex(1.0) == "3f800000"
    assert trtcache.float_hex(2 / 127) == "3c810204"
    assert trtcache.hex_float("3f800000") == 1.0


def test_round_trip(tmp_path):
    scales = trtcache.scales_from_ranges({"input": (-2.1, 2.6), "/conv/Conv_output_0": (0, 6.35),
                                          "dead": (0.0, 0.0)})
    assert scales["input"] == pytest.approx(2.6 / 127)
    assert scales["/conv/Conv_output_0"] == pytest.approx(0.05)
    assert scales["dead"] == pytest.approx(1 / 127)
    trtcache.write(tmp_path / "calib.cache", scales, trt_version="10.3.0")
    text = (tmp_path / "calib.cache").read_text().splitlines()
    assert text[0] == "TRT-100300-EntropyCalibration2"
    # sorted by tensor name: one set of scales gives one file, whatever order it came in
    assert text[1:] == ["/conv/Conv_output_0: 3d4ccccd", "dead: 3c010204", "input: 3ca7b5d2"]
    trtcache.write(tmp_path / "again.cache", dict(reversed(scales.items())))
    assert (tmp_path / "again.cache").read_text() == (tmp_path / "calib.cache").read_text()
    header, back = trtcache.read(tmp_path / "calib.cache")
    assert header == text[0]
    assert back == pytest.approx(scales, rel=1e-7)


def test_bad_caches(tmp_path):
    (tmp_path / "a").write_text("hello\n")
    with pytest.raises(trtcache.CalibrationCacheError, match="not a TensorRT calibration"):
        trtcache.read(tmp_path / "a")
    (tmp_path / "b").write_text("TRT-8601-EntropyCalibration2\nx: zz\n")
    with pytest.raises(trtcache.CalibrationCacheError, match=":2: expected"):
        trtcache.read(tmp_path / "b")
    with pytest.raises(ValueError, match="non-finite"):
        trtcache.scales_from_ranges({"x": (0, float("inf"))})
    with pytest.raises(ValueError, match="unknown calibrator"):
        trtcache.write(tmp_path / "c", {}, algorithm="Magic")
