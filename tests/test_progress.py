"""Progress bars show on a terminal only, and never when turned off."""
import io
import sys

from tqdm import tqdm

from conftest import Terminal
from pipeline.progress import bar, progress


def test_a_bar_on_a_terminal_only(monkeypatch):
    items = [1, 2, 3]
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert progress(items) is items
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert progress(items, enabled=False) is items
    wrapped = progress(items, total=3, description="x")
    assert isinstance(wrapped, tqdm) and list(wrapped) == items
    assert "0/3" in sys.stderr.getvalue()  # drawn when it starts (and cleared when done)


def test_a_manual_bar_counts_or_does_nothing(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    with bar(True, 10, "images") as counter:
        counter.update(4)
    assert "0/10" in sys.stderr.getvalue()
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with bar(True, 10) as counter:
        counter.update(4)
    assert sys.stderr.getvalue() == ""
