"""The registry of the course's models (after torchvision's ``models/_api.py``).

Each factory is registered with its facts::

    @register_model(torchvision="resnet18", weights="ResNet18_Weights.IMAGENET1K_V1",
                    params=11_689_512, macs=1_814_073_344)
    def resnet18(**kwargs) -> ResNet: ...

* ``torchvision``: the torchvision builder this model equals (same ``state_dict``
  keys and shapes, same outputs); ``tests/test_models_registry.py`` checks every one.
* ``weights``: torchvision's weights enum member, whose metadata (ImageNet top-1,
  parameters, GFLOPs, recipe) ships with torchvision and is read without a download.
* ``params`` and ``macs``: parameters and multiply-adds of one image at
  ``input_size``, as the course's own counter finds them (the test recounts them),
  for the model built with ``eval_kwargs`` (GoogLeNet: without its training-only
  auxiliary heads, as torchvision ships its weights).
* ``paper_top1`` and ``paper_source``: the paper's ImageNet top-1 accuracy (%) and
  where it is stated.

``get_model(name, **kwargs)`` builds one; ``list_models(family=None)`` names them;
``model_facts(name)`` returns the facts.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

# The family modules, in the book's order; importing one registers its factories.
FAMILIES = ("lenet", "alexnet", "vgg", "googlenet", "resnet", "densenet", "mobilenet", "efficientnet",
            "convnext", "vit")


@dataclass(frozen=True)
class ModelFacts:
    name: str
    family: str
    factory: Callable[..., nn.Module]
    torchvision: str | None = None
    weights: str | None = None
    input_size: int = 224
    in_channels: int = 3
    params: int | None = None
    macs: int | None = None
    paper_top1: float | None = None
    paper_source: str = ""
    eval_kwargs: dict | None = None  # how the facts were counted, if not the factory's defaults
    fixed_input: bool = False  # takes only input_size x input_size images (a ViT's position embedding)

    def torchvision_meta(self) -> dict:
        """The metadata of torchvision's weights for this model (no download): ``{}`` if it has none."""
        if not self.weights:
            return {}
        import torchvision

        enum_name, member = self.weights.split(".")
        return dict(getattr(getattr(torchvision.models, enum_name), member).meta)

    def torchvision_top1(self) -> float | None:
        """ImageNet-1K top-1 accuracy (%) of torchvision's weights, from their metadata."""
        metrics = self.torchvision_meta().get("_metrics", {}).get("ImageNet-1K", {})
        return metrics.get("acc@1")


_REGISTRY: dict[str, ModelFacts] = {}


def register_model(*, torchvision: str | None = None, weights: str | None = None, input_size: int = 224,
                   in_channels: int = 3, params: int | None = None, macs: int | None = None,
                   paper_top1: float | None = None, paper_source: str = "", eval_kwargs: dict | None = None,
                   fixed_input: bool = False) -> Callable:
    """Decorator: record a factory under its function name, with its facts."""
    if paper_top1 is not None and not paper_source:
        raise ValueError("a paper's top-1 needs its source (paper_source)")

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = factory.__name__
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"a model named {name!r} is already registered")
        family = factory.__module__.rsplit(".", 1)[-1]
        _REGISTRY[name] = ModelFacts(name, family, factory, torchvision, weights, input_size, in_channels,
                                     params, macs, paper_top1, paper_source, eval_kwargs, fixed_input)
        return factory

    return wrap


def _load_families() -> None:
    for family in FAMILIES:
        try:
            importlib.import_module(f"{__package__}.{family}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{family}":  # a family that exists but fails to import is a bug
                raise


def list_models(family: str | None = None) -> list[str]:
    """Registered model names, in the book's order of families (optionally one family only)."""
    _load_families()
    if family is not None and family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; the families are {', '.join(FAMILIES)}")
    order = {f: i for i, f in enumerate(FAMILIES)}
    facts = sorted(_REGISTRY.values(), key=lambda f: order.get(f.family, len(order)))  # then as registered
    return [f.name for f in facts if family is None or f.family == family]


def model_facts(name: str) -> ModelFacts:
    _load_families()
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; list_models() names them all"
        raise KeyError(f"no model named {name!r}{hint}")
    return _REGISTRY[name]


def get_model(name: str, **kwargs) -> nn.Module:
    """Build the registered model ``name`` (keyword arguments go to its factory)."""
    return model_facts(name).factory(**kwargs)


def reject_overrides(name: str, kwargs: dict, fixed: dict) -> None:
    """Refuse keywords that would contradict a named configuration.

    ``densenet121(growth_rate=12)`` is not DenseNet-121: a factory named after a
    configuration passes its fixed values here, and a keyword that sets one of them
    to something else raises ``TypeError`` naming the general builder to use instead.
    """
    clash = {k: v for k, v in kwargs.items() if k in fixed and v != fixed[k]}
    if clash:
        given = ", ".join(f"{k}={v!r}" for k, v in clash.items())
        fixed_text = ", ".join(f"{k}={fixed[k]!r}" for k in clash)
        raise TypeError(f"{name}() is defined by {fixed_text}; {given} would build a different network. "
                        f"Call the family's general constructor with those settings instead.")
