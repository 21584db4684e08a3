"""Exercise checks: one module per exercise notebook, on the small core in :mod:`icdl.checks.core`.

In a notebook::

    from icdl.checks import ex01_cnn_basics as ex
    ex.q1.check(conv_output_size)
    ex.q1.hint()
    ex.q1.solution()
"""
