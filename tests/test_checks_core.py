"""icdl.checks.core: outcomes, strict mode, hints, solutions, the check log and the helpers."""

import json

import icdl
import nbformat
import pytest
import torch
from icdl.checks.core import (
    CheckFailed,
    Incorrect,
    NotAttempted,
    Outcome,
    Question,
    call,
    describe,
    expect_close,
    expect_number,
    expect_type,
    register,
    trace_forward,
)
from torch import nn


class Double(Question):
    title = "double a number"
    hints = ["Multiply by two.", "`return 2 * x`"]

    def verify(self, fn):
        for x in (0, 3, -2):
            expect_number(call(fn, x), 2 * x, f"double({x})")


class Buggy(Question):
    title = "a checker with a bug"

    def verify(self, fn):
        return {}["missing"]  # the checker's own bug, not the learner's


def double(x):
    return 2 * x


def stub(x):
    # YOUR CODE HERE
    raise NotImplementedError("Replace this line with your code.")


def crashes(x):
    return x + "oops"


@pytest.fixture
def q(monkeypatch):
    monkeypatch.delenv("COURSE_STRICT_CHECKS", raising=False)
    monkeypatch.delenv("COURSE_CHECK_LOG", raising=False)
    return register("09_demo", q1=Double())["q1"]


def test_correct(q):
    result = q.evaluate(double)
    assert result.outcome is Outcome.CORRECT and result.message == "Correct!" and bool(result)
    assert result.question == "Q1: double a number"


def test_incorrect_says_expected_and_got(q):
    result = q.evaluate(lambda x: x + 2)
    assert result.outcome is Outcome.INCORRECT and not result
    assert result.message == "double(0) is 2, but the expected value is 0."


def test_learner_exception_is_incorrect_and_points_at_their_line(q):
    result = q.evaluate(crashes)
    assert result.outcome is Outcome.INCORRECT
    assert result.message.startswith("Calling `crashes` raised TypeError")
    assert "`return x + \"oops\"`" in result.message


@pytest.mark.parametrize("answer", [None, stub])
def test_not_attempted(q, answer):
    result = q.evaluate(answer)
    assert result.outcome is Outcome.NOT_ATTEMPTED
    assert result.message.startswith("Not attempted yet")


def test_not_a_function_is_incorrect(q):
    result = q.evaluate(42)
    assert result.outcome is Outcome.INCORRECT
    assert result.message == "Expected a function or class, got int 42."


def test_checker_bug_is_uncheckable():
    result = register("09_demo", q9=Buggy())["q9"].evaluate(double)
    assert result.outcome is Outcome.UNCHECKABLE
    assert "The checker itself failed (KeyError: 'missing')" in result.message
    assert f"icdl {icdl.__version__}" in result.message


def test_check_prints_outcome_and_version(q, capsys):
    q.check(double)
    out = capsys.readouterr().out
    assert out.startswith("✅ Correct — Q1: double a number")
    assert f"[icdl {icdl.__version__}]" in out
    q.check(lambda x: x)
    out = capsys.readouterr().out
    assert out.startswith("❌ Incorrect — Q1: double a number\ndouble(3) is 3, but the expected value is 6.")
    q.check(None)
    assert capsys.readouterr().out.startswith("⏳ Not attempted — Q1")


def test_strict_mode_raises_on_anything_but_correct(q, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "1")
    q.check(double)  # no exception
    with pytest.raises(CheckFailed, match=r"Q1: double a number: incorrect: double\(3\) is 3"):
        q.check(lambda x: x)
    with pytest.raises(CheckFailed, match="not attempted"):
        q.check(None)
    monkeypatch.setenv("COURSE_STRICT_CHECKS", "0")
    q.check(None)  # "0" means off


def test_hints_one_at_a_time_then_stay_on_the_last(q, capsys):
    for _ in range(3):
        q.hint()
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["💡 Hint 1 of 2: Multiply by two.", "💡 Hint 2 of 2: `return 2 * x`",
                     "💡 Hint 2 of 2: `return 2 * x`"]
    q.hint(1)
    assert capsys.readouterr().out.strip() == "💡 Hint 1 of 2: Multiply by two."
    Buggy().hint()
    assert capsys.readouterr().out.strip() == "No hints for this question."


def test_solution_reads_the_answer_cell_from_solutions(q, tmp_path, monkeypatch, capsys):
    (tmp_path / "_toc.yml").write_text("format: jb-book\n")
    (tmp_path / "utils").mkdir()
    (tmp_path / "solutions").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Demo"),
        nbformat.v4.new_code_cell("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n"
                                  "\nex.q1.check(double)"),
        nbformat.v4.new_code_cell("### BEGIN SOLUTION\nz = 1\n### END SOLUTION\nex.q2.check(z)"),
    ]
    nbformat.write(nb, tmp_path / "solutions" / "09_demo.ipynb")
    monkeypatch.chdir(tmp_path)
    q.solution()
    out = capsys.readouterr().out
    assert out == "Solution:\n\ndef double(x):\n    return 2 * x\n\nex.q1.check(double)\n"
    other = register("09_demo", q3=Double())["q3"]
    other.solution()
    assert capsys.readouterr().out.strip() == "No solution cell for q3 found in solutions/09_demo.ipynb."
    register("10_absent", q1=Double())["q1"].solution()
    assert "has no solutions/10_absent.ipynb" in capsys.readouterr().out


def test_check_log_gets_one_json_line_per_check(q, tmp_path, monkeypatch, capsys):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv("COURSE_CHECK_LOG", str(log))
    q.check(double)
    q.check(None)
    q.check(lambda x: -x)
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["notebook"], e["question"], e["outcome"]) for e in entries] == [
        ("09_demo", "q1", "correct"), ("09_demo", "q1", "not attempted"), ("09_demo", "q1", "incorrect")]
    assert entries[2]["message"] == "double(3) is -3, but the expected value is 6."


class SmallNet(nn.Module):
    def __init__(self, fc_in=4 * 6 * 6):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(fc_in, 10)

    def forward(self, x):
        return self.fc(self.flat(self.conv(x)))


def test_trace_forward_records_each_layer():
    out, records = trace_forward(SmallNet(), torch.zeros(2, 1, 8, 8))
    assert out.shape == (2, 10)
    assert [(name, type(m).__name__, shape) for name, m, shape in records] == [
        ("conv", "Conv2d", (2, 4, 6, 6)), ("flat", "Flatten", (2, 144)), ("fc", "Linear", (2, 10))]


def test_trace_forward_names_the_failing_step_and_last_layer_that_ran():
    with pytest.raises(Incorrect) as err:
        trace_forward(SmallNet(fc_in=100), torch.zeros(2, 1, 8, 8))
    message = str(err.value)
    assert message.startswith("Your model's forward on an input of shape (2, 1, 8, 8) raised RuntimeError")
    assert "2x144 and 100x10" in message
    assert "The last layer that ran was `flat` (Flatten), which output shape (2, 144)." in message


def test_trace_forward_nan_output():
    model = SmallNet()
    with torch.no_grad():
        model.fc.bias.fill_(float("nan"))
    with pytest.raises(Incorrect, match=r"output contains NaN for an input of shape \(2, 1, 8, 8\)"):
        trace_forward(model, torch.zeros(2, 1, 8, 8))


def test_expect_close_messages():
    expected = torch.arange(6.0).reshape(2, 3)
    assert expect_close(expected.clone(), expected).shape == (2, 3)
    with pytest.raises(NotAttempted):
        expect_close(None, expected)
    with pytest.raises(Incorrect, match=r"^Your output should be a torch.Tensor, but it is list \[1, 2\]\.$"):
        expect_close([1, 2], expected)
    with pytest.raises(Incorrect, match=r"^Your output has shape \(3, 2\); expected \(2, 3\)\.$"):
        expect_close(expected.reshape(3, 2), expected)
    with_nan = expected.clone()
    with_nan[0, 1] = float("nan")
    with pytest.raises(Incorrect, match=r"contains NaN \(1 of 6 values\)"):
        expect_close(with_nan, expected)
    off = expected.clone()
    off[1, 2] += 0.5
    with pytest.raises(Incorrect, match=r"largest difference is 0.5 at index \(1, 2\) \(yours 5.5, expected 5\)"):
        expect_close(off, expected)


def test_expect_number_and_type_messages():
    assert expect_number(torch.tensor(4), 4) == 4 and expect_number(torch.tensor(4.0), 4.0) == 4.0
    with pytest.raises(Incorrect, match=r"should be a number, but it is str '4'"):
        expect_number("4", 4)
    with pytest.raises(Incorrect, match="is NaN; expected 4"):
        expect_number(float("nan"), 4)
    with pytest.raises(Incorrect, match="should be a number"):
        expect_number(True, 1)
    with pytest.raises(Incorrect, match=r"^The model should be a Module, but it is int 3\.$"):
        expect_type(3, nn.Module, "The model")
    with pytest.raises(NotAttempted):
        expect_type(None, nn.Module)


# --------------------------------------------------------------------------
# expect_same_model: the shared core of every "load torchvision's weights" question
# --------------------------------------------------------------------------
class Tiny(nn.Module):
    def __init__(self, classes=3, extra=False):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.bn = nn.BatchNorm2d(2)
        self.fc = nn.Linear(2, classes)
        self.extra = nn.Linear(1, 1) if extra else None

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).mean(dim=(2, 3)))


def _same_model_result(answer):
    from icdl.checks.core import expect_same_model, randomize_bn_stats

    torch.manual_seed(0)
    reference = randomize_bn_stats(Tiny()).eval()

    class Q(Question):
        def verify(self, make):
            model = make(reference)
            expect_same_model(model, reference, Tiny, torch.randn(2, 1, 5, 5), label="Your copy",
                              build="Tiny()")

    return Q().evaluate(answer)


def _copy(reference, **kw):
    model = Tiny(**kw)
    model.load_state_dict(reference.state_dict())
    return model.eval()


@pytest.mark.parametrize("answer, fragments", [
    (lambda ref: ref, ["torchvision's model itself", "Build Tiny()"]),
    (lambda ref: nn.Linear(1, 1), ["should be the course's Tiny", "Linear"]),
    (lambda ref: Tiny(extra=True).eval(), ["unexpected keys (2): extra.bias, extra.weight"]),
    (lambda ref: Tiny(classes=4).eval(), ["fc.weight (4, 2) vs (3, 2)", "number of classes"]),
    (lambda ref: _copy(ref).train(), ["training mode", "model.eval()"]),
    (lambda ref: Tiny().eval(), ["outputs differ", "load_state_dict"]),
])
def test_expect_same_model_names_each_mistake(answer, fragments):
    result = _same_model_result(answer)
    assert result.outcome is Outcome.INCORRECT, result
    for fragment in fragments:
        assert fragment in result.message, result.message


def test_expect_same_model_passes_a_true_copy_and_spots_a_missing_answer():
    assert _same_model_result(_copy).outcome is Outcome.CORRECT
    forgot_return = _same_model_result(lambda ref: None)
    assert forgot_return.outcome is Outcome.INCORRECT and "forget `return`" in forgot_return.message


def test_randomize_bn_stats_makes_uncopied_buffers_matter():
    from icdl.checks.core import randomize_bn_stats

    model = randomize_bn_stats(Tiny())
    assert not torch.allclose(model.bn.running_mean, torch.zeros(2))
    assert not torch.allclose(model.bn.running_var, torch.ones(2))


# --------------------------------------------------------------------------
# The answer rules every question shares
# --------------------------------------------------------------------------
class Size(Question):
    title = "an output size"

    def verify(self, n):
        expect_number(n, 14, "Your size")


def test_numbers_are_plain_and_of_the_right_kind():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    assert Size().evaluate(14).outcome is Outcome.CORRECT
    assert Size().evaluate(torch.tensor(14)).outcome is Outcome.CORRECT
    liar = Size().evaluate(Liar(3))
    assert liar.outcome is Outcome.INCORRECT and "is 3" in liar.message
    floaty = Size().evaluate(14.0)
    assert floaty.outcome is Outcome.INCORRECT and "should be an int" in floaty.message and "//" in floaty.message
    many = Size().evaluate(torch.tensor([14, 14]))
    assert many.outcome is Outcome.INCORRECT and "should be one number" in many.message


def test_a_forgotten_return_is_incorrect_not_unattempted():
    result = Double().evaluate(lambda x: None)
    assert result.outcome is Outcome.INCORRECT and "returned None: did you forget the `return`?" in result.message


def stub(x):
    raise NotImplementedError("Replace this line with your code.")


def test_only_the_stubs_own_not_implemented_error_means_not_attempted():
    assert Double().evaluate(stub).outcome is Outcome.NOT_ATTEMPTED

    class NoForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(2, 2)

        def forwrad(self, x):  # misspelt
            return self.fc(x)

    class Shape(Question):
        title = "a model"

        def verify(self, model):
            trace_forward(model, torch.zeros(1, 2))

    result = Shape().evaluate(NoForward())
    assert result.outcome is Outcome.INCORRECT and "`NoForward` has no `forward`" in result.message

    def uses_a_missing_feature(x):
        raise NotImplementedError("the meta device cannot do this")

    other = Double().evaluate(uses_a_missing_feature)
    assert other.outcome is Outcome.INCORRECT and "does not come from the exercise's placeholder" in other.message


def test_the_number_of_answers_is_checked_first():
    result = Double().evaluate(lambda x: 2 * x, lambda x: 2 * x)
    assert result.outcome is Outcome.INCORRECT and "takes 1 answer (`fn`); you passed 2" in result.message


def test_errors_are_blamed_on_the_learners_line_not_the_library():
    def shapes_wrong(x):
        return torch.zeros(2, 3) @ torch.zeros(2, 3)  # the learner's line

    result = Double().evaluate(shapes_wrong)
    assert result.outcome is Outcome.INCORRECT and "`return torch.zeros(2, 3) @ torch.zeros(2, 3)" in result.message
    assert "site-packages" not in result.message and "torch/" not in result.message


def test_a_slow_answer_is_stopped_and_the_slow_line_named(monkeypatch):
    monkeypatch.setenv("COURSE_CHECK_TIMEOUT", "0.3")

    def forever(x):
        while True:
            try:
                pass  # busy: the learner's loop
            except Exception:  # a learner's catch-all cannot swallow the time limit
                pass

    result = Double().evaluate(forever)
    assert result.outcome is Outcome.INCORRECT
    assert "still running after 0.3 seconds" in result.message and "at line" in result.message
    assert Double().evaluate(lambda x: 2 * x).outcome is Outcome.CORRECT  # the timer is gone afterwards


def test_hint_accepts_what_a_learner_types(capsys):
    q = Double()
    for typed in (2, "2", 2.0, " hint 2 "):
        q.hint(typed)
        assert "Hint 2 of 2" in capsys.readouterr().out
    q.hint("two")
    assert "such as hint(2)" in capsys.readouterr().out
    q.hint(5)
    assert "hints 1 to 2" in capsys.readouterr().out


def test_graded_mode_hides_solutions_and_counts_hints(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_GRADING", "1")
    q = register("01_cnn_basics", q1=Double())["q1"]
    q.solution()
    assert "not available while this notebook is graded" in capsys.readouterr().out
    q.hint()
    q.hint()
    assert q.hints_used == 2 and q.solutions_used == 1


def test_describe_never_echoes_a_huge_value():
    assert len(describe("x" * 10_000_000)) < 80


def test_huge_numbers_are_described_not_crashed_on():
    result = Size().evaluate(10 ** 5000)
    assert result.outcome is Outcome.INCORRECT and "5,001 digits" in result.message


def test_the_check_time_limit_never_replaces_an_outer_one(monkeypatch):
    """The grader sets its own limit (SIGALRM) around a check; a check's own limit must not cancel it."""
    import signal

    monkeypatch.setenv("COURSE_CHECK_TIMEOUT", "5")
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(True))
    signal.setitimer(signal.ITIMER_REAL, 30)
    try:
        assert Double().evaluate(lambda x: 2 * x).outcome is Outcome.CORRECT
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 20  # the outer timer still runs
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
