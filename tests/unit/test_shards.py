"""`make test` runs the suite as shares of its files (tests/shards.py): every
file runs in exactly one share, the shares are balanced on the files' seconds,
and the same files always give the same shares (each process cuts on its own)."""
import pytest

from tests.shards import NEW_FILE_SECONDS, parse_shard, share_files

SECONDS = {"a.py": 50.0, "b.py": 40.0, "c.py": 30.0, "d.py": 20.0, "e.py": 10.0, "f.py": 10.0}


def test_every_file_runs_in_exactly_one_share():
    shares = share_files(list(SECONDS), SECONDS, 3)
    everything = [name for share in shares for name in share]
    assert sorted(everything) == sorted(SECONDS)


def test_the_shares_are_balanced_on_seconds():
    shares = share_files(list(SECONDS), SECONDS, 2)
    loads = sorted(sum(SECONDS[name] for name in share) for share in shares)
    assert loads == [80.0, 80.0]                         # 50+20+10 and 40+30+10


def test_the_cut_does_not_depend_on_the_order_the_files_came_in():
    files = list(SECONDS)
    assert share_files(files, SECONDS, 2) == share_files(files[::-1], SECONDS, 2)


def test_a_file_without_a_figure_counts_as_a_new_file():
    shares = share_files(["old.py", "new1.py", "new2.py"], {"old.py": 2 * NEW_FILE_SECONDS}, 2)
    assert sorted(map(sorted, shares)) == [["new1.py", "new2.py"], ["old.py"]]


@pytest.mark.parametrize("value", ["2", "0/2", "3/2", "a/b"])
def test_a_malformed_shard_is_refused_by_name(value):
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(value)
