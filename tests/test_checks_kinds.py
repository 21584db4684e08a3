"""The ready-made kinds of question (icdl.checks.kinds): each passes the right answer, calls the untouched stub
"not attempted", and fails each planted mistake with its own message."""

import pytest
import torch
from checkhelpers import assert_incorrect, assert_not_attempted, assert_wrong
from icdl.checks import kinds
from icdl.checks.core import Outcome, register
from torch import nn


# --- FunctionQuestion -----------------------------------------------------------
class OutputSize(kinds.FunctionQuestion):
    title = "the output size of a convolution"
    function = "out_size"
    result = "int"
    cases = [(32, 5), ((28, 3), {"stride": 2, "padding": 1}), (7, 3, 2)]
    reference = staticmethod(lambda n, k, stride=1, padding=0: (n + 2 * padding - k) // stride + 1)
    mistakes = [("forgot the padding", lambda n, k, stride=1, padding=0: (n - k) // stride + 1),
                ("ignored the stride", lambda n, k, stride=1, padding=0: n + 2 * padding - k + 1)]
    success = "Right: floor((n + 2p - k) / s) + 1."


def make_output_size():
    return register("98_demo", q1=OutputSize())["q1"]


def test_function_question_right_answer_and_stub():
    q = make_output_size()
    result = q.evaluate(lambda n, k, stride=1, padding=0: (n + 2 * padding - k) // stride + 1)
    assert result.outcome is Outcome.CORRECT and result.message == "Right: floor((n + 2p - k) / s) + 1."
    assert_not_attempted(q)


def test_function_question_names_each_mistake():
    q = make_output_size()
    assert_wrong(q, lambda n, k, stride=1, padding=0: (n - k) // stride + 1, "out_size(28, 3, stride=2, padding=1)",
                 "returned 13", "forgot the padding")
    assert_wrong(q, lambda n, k, stride=1, padding=0: n + 2 * padding - k + 1, "ignored the stride")
    # No listed mistake matches: the case and the expected value are named (outside graded mode).
    assert_wrong(q, lambda n, k, stride=1, padding=0: 0, "out_size(32, 5) returned 0; expected 28.")
    assert_wrong(q, lambda n, k, stride=1, padding=0: (n + 2 * padding - k) / stride + 1, "should be an int")
    assert_wrong(q, lambda n, k, stride=1, padding=0: None, "did you forget the `return`?")


def test_function_question_hides_the_expected_value_when_graded(monkeypatch):
    monkeypatch.setenv("COURSE_GRADING", "1")
    result = make_output_size().evaluate(lambda n, k, stride=1, padding=0: 0)
    assert result.outcome is Outcome.INCORRECT and "28" not in result.message, result.message


class Double(kinds.FunctionQuestion):
    title = "double a tensor"
    function = "double"
    result = "tensor"
    cases = [(torch.arange(4.0),)]
    reference = staticmethod(lambda x: x * 2)
    mistakes = [("squared it instead", lambda x: x * x)]


def test_tensor_function_question_and_inputs_changed_in_place():
    q = register("98_demo", q2=Double())["q2"]
    assert q.evaluate(lambda x: x * 2).outcome is Outcome.CORRECT
    # An answer that doubles its input in place and returns it is right; it cannot change the reference's input.
    assert q.evaluate(lambda x: x.mul_(2)).outcome is Outcome.CORRECT
    assert_wrong(q, lambda x: x * x, "squared it instead")
    assert_wrong(q, lambda x: x * 3, "differs from the expected values")
    assert_wrong(q, lambda x: (x * 2)[:2], "has shape (2,); expected (4,)")


# --- ValueQuestion --------------------------------------------------------------
class Counts(kinds.ValueQuestion):
    title = "parameters of a 3x3 convolution from 3 to 16 channels, and of a linear layer 10 -> 2"
    names = ("conv_params", "fc_params")
    mistakes = {"conv_params": [(lambda conv, fc: conv - 16, "you left out the 16 biases")],
                "fc_params": [(20, "a linear layer also has one bias per output")]}

    def expected(self):
        return (sum(p.numel() for p in nn.Conv2d(3, 16, 3).parameters()),
                sum(p.numel() for p in nn.Linear(10, 2).parameters()))


class Ratio(kinds.ValueQuestion):
    title = "a ratio"
    names = ("ratio",)
    integer = False

    def expected(self):
        return (18 / 25,)


def test_value_question_right_values_stub_and_count():
    q = register("98_demo", q3=Counts())["q3"]
    assert q.evaluate(448, 22).outcome is Outcome.CORRECT
    assert q.answers == ("conv_params", "fc_params")
    assert q.evaluate(None, None).outcome is Outcome.NOT_ATTEMPTED
    assert q.evaluate(448, None).outcome is Outcome.NOT_ATTEMPTED
    assert_wrong(q, 448, "takes 2 answers (`conv_params`, `fc_params`); you passed 1")


def test_value_question_mistakes_never_print_the_answer():
    q = register("98_demo", q3=Counts())["q3"]
    r = q.evaluate(432, 22)
    assert r.outcome is Outcome.INCORRECT and "left out the 16 biases" in r.message and "448" not in r.message
    assert_incorrect(q.evaluate(448, 20), "`fc_params` = 20 is not right: a linear layer also has one bias per output")
    r = q.evaluate(449, 22)
    assert "`conv_params` = 449 is not right: recount it" in r.message and "448" not in r.message
    assert_incorrect(q.evaluate(448.0, 22), "should be an int")
    assert_incorrect(q.evaluate("448", 22), "should be a number")

    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    assert_incorrect(q.evaluate(Liar(1), 22), "`conv_params` = 1 is not right")


def test_value_question_ratio_tolerance_is_tight():
    q = register("98_demo", q4=Ratio())["q4"]
    assert q.evaluate(18 / 25).outcome is Outcome.CORRECT
    assert q.evaluate(torch.tensor(0.72, dtype=torch.float64)).outcome is Outcome.CORRECT
    assert_wrong(q, 0.7205, "`ratio` = 0.7205 is not right")
    assert_wrong(q, float("nan"), "NaN")
    assert_wrong(q, torch.tensor([0.72, 0.72]), "should be one number")


# --- ChoiceQuestion -------------------------------------------------------------
class Predict(kinds.ChoiceQuestion):
    title = "what removing the shortcuts does"
    options = {"a": "nothing", "b": "the deeper net trains worse", "c": "the deeper net trains better"}
    answer = "b"
    why = {"a": "the shortcuts are what keep the gradient flowing", "c": "depth alone made the plain net worse"}
    success = "Right: the degradation problem."


def test_choice_question():
    q = register("98_demo", q5=Predict())["q5"]
    for right in ("b", "B", " (b) ", "b.", "the deeper net trains worse"):
        assert q.evaluate(right).outcome is Outcome.CORRECT, right
    assert q.evaluate(None).outcome is Outcome.NOT_ATTEMPTED  # the stub: `answer = None`
    assert_wrong(q, "a", "Not (a): the shortcuts are what keep the gradient flowing")
    assert_wrong(q, "c", "Not (c): depth alone")
    assert_wrong(q, "d", "not one of the options", '"a", "b" or "c"')
    assert_wrong(q, 2, "should be a letter")
    assert "(b) the deeper net trains worse" in q.options_text()


def exercise_modules():
    import importlib
    import pathlib

    import icdl.checks

    folder = pathlib.Path(icdl.checks.__file__).parent
    return [importlib.import_module(f"icdl.checks.{p.stem}") for p in sorted(folder.glob("ex[0-9][0-9]_*.py"))]


def test_every_choice_question_explains_every_wrong_option():
    seen = 0
    for module in exercise_modules():
        for q in module.QUESTIONS.values():
            if isinstance(q, kinds.ChoiceQuestion):
                seen += 1
                assert q.answer in q.options and set(q.why) == set(q.options) - {q.answer}, q.name
    assert seen >= 3  # predictions and diagnoses in the exercises


# --- TorchvisionQuestion --------------------------------------------------------
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x):
        return self.bn(self.conv(x)).mean((2, 3))


class TinyTransfer(kinds.TorchvisionQuestion):
    title = "copy the weights"
    function = "transfer"
    input_shape = (2, 3, 8, 8)
    build_text = "Tiny()"
    course_class = staticmethod(lambda: Tiny)

    def build_reference(self):
        from icdl.checks.core import randomize_bn_stats

        torch.manual_seed(0)
        reference = nn.Sequential()
        reference.conv, reference.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)
        reference.forward = lambda x: reference.bn(reference.conv(x)).mean((2, 3))
        return randomize_bn_stats(reference).eval()


def test_torchvision_question():
    q = register("98_demo", q6=TinyTransfer())["q6"]

    def right(tv):
        model = Tiny()
        model.load_state_dict(tv.state_dict())
        return model.eval()

    def backwards(tv):  # copies the course model's fresh weights into torchvision's
        model = Tiny()
        tv.load_state_dict(model.state_dict())
        return model.eval()

    def poisoning(tv):  # changes the reference, then fails: a later right answer must still pass
        with torch.no_grad():
            tv.conv.weight.zero_()
        raise RuntimeError("oops")

    assert q.evaluate(right).outcome is Outcome.CORRECT
    assert_not_attempted(q)
    assert_wrong(q, backwards, "copied in the wrong direction")
    assert_wrong(q, lambda tv: right(tv).train(), "training mode")
    assert_wrong(q, lambda tv: tv, "is torchvision's model itself")
    assert_wrong(q, lambda tv: Tiny().eval(), "outputs differ")
    assert_wrong(q, poisoning, "RuntimeError: oops")
    assert q.evaluate(right).outcome is Outcome.CORRECT


# --- register and the QUESTIONS table --------------------------------------------
def test_register_returns_the_table_and_rejects_non_questions():
    table = register("98_demo", q1=OutputSize(), q2=Double())
    assert list(table) == ["q1", "q2"] and table["q2"].name == "q2" and table["q2"].notebook == "98_demo"
    with pytest.raises(TypeError, match="q3 is int"):
        register("98_demo", q3=3)


def test_every_exercise_module_has_a_questions_table():
    modules = exercise_modules()
    assert len(modules) >= 11
    for module in modules:
        table = module.QUESTIONS
        assert len(table) >= 5 and all(getattr(module, k) is q and q.name == k for k, q in table.items()), module
