"""The loop under the WebAssembly MicroPython publishes the same bytes as under CPython."""
import pytest

from loop_fakes import read_hex, transcript
from mpy import describe

CAPTURE = "tools/data/aidon_demo.hex"


@pytest.mark.parametrize("opts", [["raw"], ["trouble"]], ids=["replay_with_raw", "refused_then_down"])
def test_micropython_publishes_the_same_payload_bytes_as_cpython(mpy, repo_root, opts):
    frames = read_hex(str(repo_root / CAPTURE))
    trouble = "trouble" in opts
    expected = transcript(frames, raw="raw" in opts, trouble=trouble,
                          count=len(frames) * 3 if trouble else None)
    r = mpy("host_tests/loop_fakes.py", args=["/" + CAPTURE] + opts)
    assert r.returncode == 0, describe(r)
    got = r.stdout.decode("utf-8").splitlines()
    assert got == expected
    topics = [line.split(" ")[0] for line in got]
    # In trouble, the List 1 that came while the broker was away wait as one (the latest).
    assert topics.count("han/test/list1") >= (1 if trouble else 2) and "han/test/list3" in topics
    if trouble:
        assert any('"last_connect_error":"connection_refused"' in line for line in got)


def test_the_loop_does_not_grow_the_micropython_heap(capsys):
    import bench_loop

    growth = bench_loop.heap(1500)
    out = capsys.readouterr().out
    assert growth is not None, out
    # Anything kept per frame (a payload is 50-700 bytes) shows as tens of kB; the
    # port's own figure moves in steps of a few hundred bytes (a bare allocation
    # loop steps by ~200), seen up to ~1.8 kB over 10,000 frames.
    assert growth < 4096, out
