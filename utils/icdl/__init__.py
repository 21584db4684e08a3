"""icdl: the course package of *Image Classification with Deep Learning*.

Import only the module a notebook needs::

    from icdl import env, data, train, plots
    from icdl.checks import ex01_cnn_basics as checks

The version is printed by :func:`icdl.env.setup` and by every exercise check,
so a learner can tell when the package and the notebook are out of step.
"""

__version__ = "0.1.0"

