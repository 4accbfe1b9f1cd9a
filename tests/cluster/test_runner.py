"""run_tasks on a real two-process cluster: result order, recording, costliest tasks first."""

import pytest

from pipeline.cluster.runner import run_tasks


def _square(i):
    return i * i


def _fail(i):
    if i == 2:
        raise ValueError("task 2 failed")
    return i


def _priority(i):
    """The task's index and the priority the scheduler gave it, read on the worker (first element:
    minus the user priority; lower runs first)."""
    from distributed import get_worker

    worker = get_worker()
    return i, worker.state.tasks[worker.get_current_task()].priority[0]


def test_results_come_back_in_argument_order_whatever_the_cost(client):
    cost = [1, 5, 3, 6, 2, 4]
    seen = []
    out = run_tasks(client, "t", _priority, [(i,) for i in range(6)], cost=cost, quiet=True,
                    on_result=lambda key, r: seen.append(key))
    assert [i for i, _ in out] == list(range(6)) and sorted(seen) == list(range(6))
    # costliest first: the scheduler's priorities order the tasks by cost (dask runs the lowest
    # priority tuple first). Read from the scheduler's own bookkeeping, not from start times,
    # which a loaded machine can reorder by more than any tolerance.
    by_priority = sorted(range(6), key=lambda i: out[i][1])
    assert by_priority == sorted(range(6), key=lambda i: -cost[i]), out


@pytest.mark.faults
def test_a_failing_task_raises_and_what_finished_stays_recorded(client):
    seen = []
    with pytest.raises(ValueError, match="task 2 failed"):
        run_tasks(client, "t", _fail, [(i,) for i in range(4)], quiet=True, on_result=lambda k, r: seen.append(r))
    assert 2 not in seen


def test_finished_futures_are_released_as_results_arrive(client):
    # a live future keeps its task's arguments and result on a worker: memory would grow
    # with the number of tasks done
    live = []

    def check(key, result):
        live.append(sum(1 for k, n in client.refcount.items() if str(k).startswith("_square") and n > 0))

    assert run_tasks(client, "t", _square, [(i,) for i in range(8)], quiet=True, on_result=check) == \
        [i * i for i in range(8)]
    assert live[-1] <= 1 and live == sorted(live, reverse=True), live


def test_trim_memory_returns_freed_heap_memory():
    import os
    import sys

    import numpy as np

    from pipeline.cluster.runner import trim_memory

    if not sys.platform.startswith("linux"):
        pytest.skip("glibc only")

    def rss():
        return int(open(f"/proc/{os.getpid()}/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    # 100 MB in 1 MB heap blocks (below the mmap threshold), every other one freed: the holes
    # stay in the process until trimmed
    blocks = [np.ones(131_072) for _ in range(100)]
    for i in range(0, 100, 2):
        blocks[i] = None
    before = rss()
    trim_memory()
    assert rss() < before - 20 * 2**20


def test_batched_record_writes_in_batches_and_everything_at_the_end():
    from pipeline.cluster.runner import BatchedRecord

    writes = []
    with BatchedRecord(writes.append, interval=3600) as rec:
        for i in range(5):
            rec(i, i * i)
        assert writes == []  # not yet: within the interval
    assert writes == [[(i, i * i) for i in range(5)]]

    writes.clear()
    with pytest.raises(KeyboardInterrupt):
        with BatchedRecord(writes.append, interval=0) as rec:
            rec("a", 1)
            rec("b", 2)
            raise KeyboardInterrupt
    assert writes == [[("a", 1)], [("b", 2)]]  # each at once (interval 0), none lost to the interrupt
