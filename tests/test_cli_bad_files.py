"""Malformed files from strangers, through the command line: one of each kind (pose file, camera
file, image, video, dataset metadata) ends with exit code 2, one line on stderr naming the file,
and nothing under a final name in ``out``. One process runs every case through ``main()`` (the
command line's own entry point), so the suite pays for the imports once. A PLY is read only from
inside a run directory: tests/test_scene.py gives the command line a malformed one there."""

import json
import subprocess
import sys
import textwrap

import pytest

DRIVER = textwrap.dedent("""
    import contextlib, io, json, sys
    from dreamdance.run import main

    results = []
    for args in json.loads(sys.argv[1]):
        sys.argv = ["dreamdance", *args]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code
        results.append([code, err.getvalue()])
    print(json.dumps(results))
""")


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    (d / "poses.json").write_text('{"format": "dreamdance-poses", "width": 1e400, "height": 64, '
                                  '"fps": 8, "frames": [{"people": []}]}')
    (d / "camera.json").write_text(json.dumps({"frames": [{"w2c": "no", "K": [[1]]}]}))
    (d / "art.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (d / "dance.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 20)
    data = d / "data"
    data.mkdir()
    (data / "metadata.jsonl").write_text(json.dumps({"name": "../../escape", "video": "/etc/x",
                                                     "split": "train"}) + "\n")
    return d


CASES = {
    "pose file": (["stage=motion", "poses={d}/poses.json"], "poses={d}/poses.json: "),
    "camera file": (["stage=motion", "camera={d}/camera.json"], "camera={d}/camera.json: "),
    "image": (["stage=motion", "image={d}/art.png"], "image={d}/art.png: "),
    "video": (["stage=motion", "driving={d}/dance.mp4"], "driving={d}/dance.mp4: "),
    "dataset metadata": (["stage=train", "model=tiny", "data={d}/data"], "{d}/data"),
}


def test_each_kind_of_malformed_file_is_one_line_and_exit_2(bad_files, tmp_path):
    runs = [[*(a.format(d=bad_files) for a in args), f"out={tmp_path / kind.replace(' ', '_')}"]
            for kind, (args, _) in CASES.items()]
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    for (kind, (_, expected)), (code, err) in zip(CASES.items(), results, strict=True):
        assert code == 2, (kind, code, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (kind, err)
        assert expected.format(d=bad_files) in lines[0], (kind, lines[0])
        out = tmp_path / kind.replace(" ", "_")
        written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
        assert [p for p in written if p.parts[-2] != "logs"] == [], (kind, written)
