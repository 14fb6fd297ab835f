"""The collector paused around batch work (rapport.core.memory)."""

import gc

import pytest

from rapport.core.memory import gc_paused, long_lived_freeze


def test_paused_inside_restored_after_even_on_error():
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block leaves the outer one paused
        raise RuntimeError
    assert gc.isenabled()


def test_a_block_run_with_the_collector_off_leaves_it_off():
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_freeze_moves_what_the_process_holds_out_of_the_scans():
    before = gc.get_freeze_count()
    try:
        long_lived_freeze()
        assert gc.get_freeze_count() > before
        assert gc.get_count()[2] == 0
    finally:
        gc.unfreeze()
