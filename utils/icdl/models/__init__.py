"""Reference implementations of every architecture the course teaches.

One module per family, in torchvision's style: small named blocks, the paper's
configuration table as data, one configurable network class, thin factories.
Each model loads the matching torchvision ``state_dict`` with ``strict=True``
and gives the same outputs (see ``tests/test_models_*.py``). Import a family
module directly::

    from icdl.models import resnet
    model = resnet.resnet18(num_classes=10, cifar_stem=True)
"""
