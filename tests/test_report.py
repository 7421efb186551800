"""`medalist report`: one self-contained HTML page per run or comparison, checked in a browser."""

from __future__ import annotations

import base64
import shutil
import subprocess
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import assert_drawn_png, medalist, require_tool

from medalist.analysis.report import config_differences, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Injected into a copy of the page only: marks images the browser could not decode.
IMAGE_PROBE = """<script>
window.addEventListener("load", () => {
  const broken = [...document.images].filter(i => !(i.complete && i.naturalWidth > 0));
  document.body.setAttribute("data-images", String(document.images.length));
  document.body.setAttribute("data-broken-images", String(broken.length));
  broken.forEach(i => console.error("broken image: " + i.alt));
});
</script></body>"""


class Tags(HTMLParser):
    """Every tag's attributes, by tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))

    def attrs(self, tag: str) -> list[dict[str, str]]:
        return [a for t, a in self.tags if t == tag]


def parse(html: str) -> Tags:
    p = Tags()
    p.feed(html)
    return p


def assert_self_contained(html: str) -> list[bytes]:
    """No external reference at all; every image an embedded PNG; returns the PNGs."""
    tags = parse(html)
    for tag, attrs in tags.tags:
        for key in ("src", "href", "data", "action", "srcset", "poster"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith(("data:", "#")), f"<{tag} {key}={value[:60]}>"
    assert "url(" not in html and "@import" not in html
    pngs = []
    for img in tags.attrs("img"):
        head, _, data = img["src"].partition(",")
        assert head == "data:image/png;base64", head
        pngs.append(base64.b64decode(data, validate=True))
        assert pngs[-1][:8] == PNG_MAGIC
    return pngs


# ---- one run -----------------------------------------------------------------------------------


def test_report_of_one_run_is_one_self_contained_page(trained_run: Path) -> None:
    path = write_report([trained_run])
    assert path == trained_run / "report.html"
    html = path.read_text()
    pngs = assert_self_contained(html)
    diagnosis = yaml.safe_load((trained_run / "diagnosis.json").read_text())
    assert len(pngs) == len(diagnosis["plots"]) >= 5
    for p in diagnosis["plots"]:
        assert (trained_run / p).read_bytes() in pngs
    assert "<script" not in html
    for f in diagnosis["folds"]:
        assert html_escape(f["reason"]) in html
    scores = yaml.safe_load((trained_run / "scores.json").read_text())
    assert f"{scores['mean']:.4g}" in html
    assert "backbone: test_resnet" in html  # the config
    assert "versions.torch" in html  # the provenance
    assert "most confused pairs" in html and "per-class scores" in html


def test_report_escapes_what_comes_from_the_run(trained_run: Path) -> None:
    cfg = trained_run / "config.yaml"
    cfg.write_text(cfg.read_text().replace("name: null", "name: <b onmouseover=alert(1)>x</b>"))
    html = write_report([trained_run]).read_text()
    assert "<b onmouseover" not in html
    assert "&lt;b onmouseover=alert(1)&gt;x&lt;/b&gt;" in html


# ---- comparisons ---------------------------------------------------------------------------------


def _copy_run(run: Path, name: str, edits: dict[str, str]) -> Path:
    other = run.parent / name
    shutil.copytree(run, other)
    text = (other / "config.yaml").read_text()
    for old, new in edits.items():
        assert old in text
        text = text.replace(old, new)
    (other / "config.yaml").write_text(text)
    return other


def test_comparison_flags_more_than_one_change(trained_run: Path) -> None:
    _copy_run(
        trained_run,
        "other",
        {"lr: 0.003": "lr: 0.001", "drop_rate: 0.0": "drop_rate: 0.2", "threads: 1": "threads: 2"},
    )
    project = trained_run.parent.parent
    r = medalist("report", "runs/base", "runs/other", cwd=project)
    assert r.returncode == 0, r.stderr
    path = project / "reports" / "base-vs-other.html"
    assert str(path.resolve()) in r.stdout.replace("\n", "")
    html = path.read_text()
    pngs = assert_self_contained(html)
    assert "2 settings differ" in html and "one change at a time" in html
    assert "model.drop_rate" in html and "train.lr" in html
    assert "no (bookkeeping)" in html  # train.threads is shown but doesn't count
    assert len(pngs) >= 1 + 2 * 5  # overlaid curves, then every run's plots


def test_comparison_of_one_change_says_so(trained_run: Path) -> None:
    other = _copy_run(trained_run, "lr-1e-3", {"lr: 0.003": "lr: 0.001"})
    html = write_report([trained_run, other]).read_text()
    assert "One setting differs" in html and "settings differ" not in html


def test_config_differences_mark_bookkeeping_keys() -> None:
    a = {"train": {"lr": 0.1, "threads": 1}, "track": {"backends": ["mlflow"]}}
    b = {"train": {"lr": 0.2, "threads": 2}, "track": {"backends": ["none"]}}
    diffs = {d["key"]: d["counts"] for d in config_differences([a, b])}
    assert diffs == {"train.lr": True, "train.threads": False, "track.backends": False}
    assert config_differences([a, a]) == []


# ---- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "names"),
    [(["runs/nothing"], "runs/nothing"), (["runs/base", "runs/base"], "given twice")],
)
def test_report_bad_input_exits_2_with_one_line(trained_run: Path, args, names) -> None:
    r = medalist("report", *args, cwd=trained_run.parent.parent)
    assert r.returncode == 2
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and names in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (trained_run / "report.html").exists()


def test_report_of_a_run_with_no_epoch_yet_exits_2(trained_run: Path) -> None:
    for k in range(3):
        (trained_run / f"fold_{k}" / "history.csv").unlink()
    r = medalist("report", str(trained_run))
    assert r.returncode == 2 and "no fold has finished an epoch" in r.stderr
    assert "Traceback" not in r.stderr


# ---- in a real browser ---------------------------------------------------------------------------


def chromium() -> str:
    names = ("chromium", "chromium-browser", "google-chrome")
    return require_tool(names, "apt-get install -y chromium")


def browse(page: Path, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    """Open a page in headless chromium, isolated from the network and any profile."""
    return subprocess.run(
        [
            chromium(),
            "--headless=new",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp / 'profile'}",
            "--virtual-time-budget=5000",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def load_in_browser(html_path: Path, tmp: Path) -> tuple[dict[str, str], list[str]]:
    """(the body's attributes after load, the console messages) for a copy of the page with
    the image probe injected."""
    probe = tmp / f"probe-{html_path.name}"
    probe.write_text(html_path.read_text().replace("</body>", IMAGE_PROBE, 1))
    r = browse(probe, tmp, "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    body = parse(r.stdout).attrs("body")[0]
    console = [line for line in r.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return body, console


def test_the_browser_probe_catches_broken_images_and_script_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<html><body><img alt="gone" src="missing.png">'
        "<script>nothing_here();</script></body></html>"
    )
    body, console = load_in_browser(bad, tmp_path)
    assert body["data-broken-images"] == "1"
    assert any("Uncaught" in line for line in console)


def test_report_opens_in_headless_chromium_without_broken_images_or_errors(
    trained_run: Path, tmp_path: Path
) -> None:
    other = _copy_run(trained_run, "other", {"lr: 0.003": "lr: 0.001"})
    for page in (write_report([trained_run]), write_report([trained_run, other])):
        body, console = load_in_browser(page, tmp_path)
        assert int(body["data-images"]) == page.read_text().count("<img ") > 0
        assert body["data-broken-images"] == "0"
        assert console == [], console
    shot = tmp_path / "report.png"
    r = browse(
        trained_run / "report.html", tmp_path, "--window-size=1280,2000", f"--screenshot={shot}"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert_drawn_png(shot, 1280, 2000)
