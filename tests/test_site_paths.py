"""The paths the site writer accepts: one spelling each, never outside the site."""

from __future__ import annotations

import itertools

import pytest

from kb.write import WriteError, _plain, check_unique


def _plain_by_parts(path: str) -> bool:
    """What a plain path is, spelled by its parts (kb.write._plain tests substrings)."""
    parts = path.split("/")
    return (bool(path) and "\\" not in path and "" not in parts
            and "." not in parts and ".." not in parts)


def test_a_plain_path_is_one_without_empty_dot_or_dotdot_parts() -> None:
    pieces = ["a", ".", "..", "/", "\\", "b.c", ".d"]
    for n in range(6):
        for combo in itertools.product(pieces, repeat=n):
            path = "".join(combo)
            assert _plain(path) == _plain_by_parts(path), path


def test_check_unique_takes_distinct_site_paths() -> None:
    check_unique(["index.html", "claims/a/index.html", "claims/a.ttl", "data/kb.ttl.gz"])


@pytest.mark.parametrize("paths", [
    ["claims/a/index.html", "claims/./a/index.html"],  # one file, two spellings
    ["claims/a/index.html", "claims//a/index.html"],
    ["feed.xml", "feed.xml"],
])
def test_check_unique_refuses_one_file_twice(paths: list[str]) -> None:
    with pytest.raises(WriteError, match="twice"):
        check_unique(paths)


@pytest.mark.parametrize("path", ["../outside.html", "claims/../../x", "/etc/passwd",
                                  "claims\\a", "claims/", ""])
def test_check_unique_refuses_a_path_outside_the_site(path: str) -> None:
    with pytest.raises(WriteError, match="not a site path"):
        check_unique([path])
